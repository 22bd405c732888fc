// shmbus/persister.h: the persister (ring -> segment store), the replay consumer
// (store -> live ring with no gap and no duplicate) and the durable group that reads
// what the ring lost from the store (an umbrella: one header per concept under
// shmbus/persist/).
#pragma once

#include "shmbus/persist.h"
#include "shmbus/persist/group_consumer.h"  // GroupConsumer
#include "shmbus/persist/persister.h"       // Persister, PersisterOptions, kPersisterGroup
#include "shmbus/persist/replay.h"          // ReplayConsumer, ReplayOptions
#include "shmbus/shmbus.h"
#include "shmbus/store_admin.h"
