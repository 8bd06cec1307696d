// hello.go - the Go net/http peer of the hello benchmark: the same two
// answers as raw_mhd.c and volga_hello.c. GET /hello -> "Hello, World!"
// (text/plain), GET /json -> {"message":"Hello, World!","answer":42},
// marshalled per request as volga_hello does. Default GOMAXPROCS, default
// http.Server settings.
//
// Usage: go_hello PORT   (binds 127.0.0.1 only). Not built by make:
// bench/run-suite runs `go build` when golang-go is installed.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

type message struct {
	Message string `json:"message"`
	Answer  int    `json:"answer"`
}

var helloBody = []byte("Hello, World!")

func hello(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(helloBody)
}

func jsonHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := json.Marshal(message{Message: "Hello, World!", Answer: 42})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go_hello PORT")
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Args[1])
	if err != nil || port < 1 || port > 65535 {
		fmt.Fprintln(os.Stderr, "usage: go_hello PORT")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", hello)
	mux.HandleFunc("/json", jsonHandler)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_hello:", err)
		os.Exit(1)
	}
	fmt.Printf("go_hello: listening on 127.0.0.1:%d\n", port)
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, "go_hello:", err)
		os.Exit(1)
	}
}
