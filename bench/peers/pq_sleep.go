// pq_sleep.go - the anchor for bench/pq_cancel: Go's net/http with
// database/sql and lib/pq, the idiomatic way to stop a query when the client
// leaves (QueryContext with r.Context()).
//
//	pq_sleep DSN        prints "port N", serves 127.0.0.1:N until killed
//
// GET /sleep runs SELECT pg_sleep(30) tagged vg-bench-go; GET /burn?rows=N
// sums a generate_series of N rows (CPU on the server). Built by bench/run-pq
// with Debian's golang-go and golang-github-lib-pq-dev (GOPATH mode).
package main

import (
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"

	_ "github.com/lib/pq"
)

func main() {
	db, err := sql.Open("postgres", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	query := func(w http.ResponseWriter, r *http.Request, q string, args ...any) {
		rows, err := db.QueryContext(r.Context(), q, args...)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for rows.Next() {
		}
		rows.Close()
		fmt.Fprintln(w, "done")
	}
	http.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		query(w, r, "SELECT pg_sleep(30) /* vg-bench-go */")
	})
	http.HandleFunc("/burn", func(w http.ResponseWriter, r *http.Request) {
		query(w, r, "SELECT sum(g) /* vg-bench-burn */ FROM (SELECT generate_series(1, $1::bigint) g) s",
			r.URL.Query().Get("rows"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("pq_sleep: listening on port %d\n", ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
