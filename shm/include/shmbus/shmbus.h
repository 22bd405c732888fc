// shmbus/shmbus.h: the public face of shm/, the shared-memory stream core (an umbrella:
// it includes one header per concept).
//
// shm/ owns: the ring layout in POSIX shared memory (shm/src/layout.h, documented in
// shm/FORMAT.md), stream creation / validation / removal, lock-free multi-producer
// publish (copy, claim/commit, batch), broadcast consumers (durable named groups and
// anonymous tailing readers), waiting (spin, yield, futex), and the registry of
// producers and consumers with their counters.  Nothing here exposes atomics or
// layout structs; those live in shm/src, and the internal handles that persist/ and
// the tests use (StreamControl) in shmbus/detail/, which users do not include.
#pragma once

#include "shmbus/result.h"    // Result<T>, Error, Errc: every set-up and I/O call
#include "shmbus/names.h"     // names, namespaces, parse_size/duration, now_ns, stop check
#include "shmbus/stream.h"    // create/remove/list/stream_info, StreamOptions, WaitStrategy
#include "shmbus/producer.h"  // Producer, Claim, PubStatus
#include "shmbus/consumer.h"  // Consumer, StartFrom, ReadStatus
