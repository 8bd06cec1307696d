/* iptab.c - connections per client address: a chained hash table under one
 * mutex, touched once when a connection is accepted and once when it
 * closes, and only when the app has a per-IP limit. An entry lives while
 * its address has connections, so memory follows the open connections. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "engine/iptab.h"

#define VG__BUCKETS 1024

typedef struct vg__ipent {
    struct vg__ipent *next;
    unsigned char addr[16];  /* IPv4 addresses as IPv4-mapped IPv6 */
    unsigned count;
} vg__ipent;

struct vg__iptab {
    pthread_mutex_t lock;
    unsigned limit;
    vg__ipent *buckets[VG__BUCKETS];
};

vg__iptab *vg__iptab_new(unsigned limit)
{
    vg__iptab *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    t->limit = limit;
    return t;
}

/* The address as 16 bytes (an IPv4 client and the same client seen over
 * an IPv6 socket are one address); false if it has none we count. */
static bool vg__ip_key(const struct sockaddr *sa, unsigned char key[16])
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

static unsigned vg__ip_hash(const unsigned char key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    int i;

    for (i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % VG__BUCKETS;
}

bool vg__iptab_take(vg__iptab *t, const struct sockaddr *sa)
{
    unsigned char key[16];
    vg__ipent **slot, *e;
    bool ok = true;

    if (!vg__ip_key(sa, key))
        return true;
    pthread_mutex_lock(&t->lock);
    slot = &t->buckets[vg__ip_hash(key)];
    for (e = *slot; e != NULL && memcmp(e->addr, key, 16) != 0; e = e->next)
        ;
    if (e == NULL) {
        e = calloc(1, sizeof *e);
        if (e == NULL) {
            ok = false; /* no memory: refuse rather than not count */
        } else {
            memcpy(e->addr, key, 16);
            e->next = *slot;
            *slot = e;
        }
    }
    if (ok && e->count >= t->limit)
        ok = false;
    else if (ok)
        e->count++;
    pthread_mutex_unlock(&t->lock);
    return ok;
}

void vg__iptab_give(vg__iptab *t, const struct sockaddr *sa)
{
    unsigned char key[16];
    vg__ipent **slot, *e;

    if (!vg__ip_key(sa, key))
        return;
    pthread_mutex_lock(&t->lock);
    for (slot = &t->buckets[vg__ip_hash(key)]; (e = *slot) != NULL;
         slot = &e->next)
        if (memcmp(e->addr, key, 16) == 0)
            break;
    if (e != NULL && e->count > 0 && --e->count == 0) {
        *slot = e->next;
        free(e);
    }
    pthread_mutex_unlock(&t->lock);
}

void vg__iptab_free(vg__iptab *t)
{
    vg__ipent *e, *next;
    int i;

    if (t == NULL)
        return;
    for (i = 0; i < VG__BUCKETS; i++)
        for (e = t->buckets[i]; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    pthread_mutex_destroy(&t->lock);
    free(t);
}
