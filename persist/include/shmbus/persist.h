// shmbus/persist.h: the public face of persist/, the on-disk segment store (an umbrella:
// one header per concept under shmbus/persist/).
//
// persist/ owns: the segment format (persist/FORMAT.md): per stream a folder
// DATA_DIR/NAMESPACE/STREAM/ of segment files holding CRC32C-framed records, a
// sparse sequence/time index beside each segment, and a "deleted below" watermark;
// the writer (SegmentStore: a file store through write() + batched fdatasync, or a
// pmem store through PMDK libpmem2), torn-tail recovery, the reader (SegmentReader),
// retention and deletion, and fsck.  It knows nothing of the ring: a durable
// consumer feeds it records with their sequence numbers.  Encoders, layouts and PMDK
// stay in persist/src.  The persister, replay and durable-group consumers that join the
// store to the ring: shmbus/persister.h; where stores live and their administration:
// shmbus/store_admin.h.
#pragma once

#include "shmbus/persist/store.h"   // SegmentStore, StoreOptions, StoreStats, DeletionReport
#include "shmbus/persist/reader.h"  // SegmentReader, Entry
#include "shmbus/persist/fsck.h"    // fsck, FsckReport
#include "shmbus/result.h"
#include "shmbus/shmbus.h"
