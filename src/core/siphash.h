/*
 * siphash — SipHash-2-4, a keyed 64-bit MAC for short inputs. Used to sign
 * page tokens so clients cannot forge or alter them.
 */
#ifndef TASKD_SIPHASH_H
#define TASKD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The SipHash-2-4 tag of in[0..len) under a 16-byte key. */
uint64_t siphash24(const uint8_t key[16], const void *in, size_t len);

#endif
