/* iptab.h - connections per client address, for a per-IP limit counted
 * across every event thread. */
#ifndef VG_IPTAB_H
#define VG_IPTAB_H

#include <stdbool.h>
#include <sys/socket.h>

typedef struct vg__iptab vg__iptab;

/* A table allowing `limit` (> 0) connections per address; NULL (ENOMEM). */
vg__iptab *vg__iptab_new(unsigned limit);
/* Counts one more connection from `sa`; false (nothing counted) if its
 * address is at the limit. Addresses that are neither IPv4 nor IPv6
 * (NULL, AF_UNIX) are not limited. Any thread. */
bool vg__iptab_take(vg__iptab *t, const struct sockaddr *sa);
/* Gives back one connection of `sa`'s address. Any thread. */
void vg__iptab_give(vg__iptab *t, const struct sockaddr *sa);
/* Frees the table. NULL is a no-op. */
void vg__iptab_free(vg__iptab *t);

#endif
