/* config_schema.h - the one table every face of xdevice's configuration comes from.
 *
 * The config struct, INI parsing, validation, defaults, the fio options, the
 * --enghelp texts, the JSON dump and the README's parameter table are all
 * generated from XD_SCHEMA below. Add a key here and every face gains it.
 *
 * Columns: X(section, key, type, default, min, max, allowed, flags, types, help)
 *   type    STR | BOOL | INT | SIZE (bytes, k/m/g/t suffixes) | ENUM | MODE (octal) | FLOAT
 *   min/max inclusive bounds for INT, SIZE and FLOAT (ignored otherwise)
 *   allowed "a|b|c" for ENUM, NULL otherwise
 *   flags   XD_K_LIVE: safe to change while running (xd_reload, the tuner's daemon);
 *           XD_K_PENDING: the feature behind the key is not built yet, so any
 *           value other than the default is rejected rather than ignored.
 *   types   the storage types the key belongs to (xd_key_applies): XD_ANY, or
 *           XD_ON(TYPE) | ... for a key only those types read. A hybrid's
 *           tiers are types of their own (hot_storage_type, cold_storage_type):
 *           a key of the tier's type is asked about with that type.
 */
#ifndef XD_CONFIG_SCHEMA_H
#define XD_CONFIG_SCHEMA_H

#define XD_K_LIVE    (1u << 0)
#define XD_K_PENDING (1u << 1)

#define XD_ANY     0u                     /* every storage type */
#define XD_ON(t)   (1u << XD_TYPE_##t)    /* enum xd_storage_type, config.h */

#define XD_KIB (1024LL)
#define XD_MIB (1024LL * 1024)
#define XD_GIB (1024LL * 1024 * 1024)
#define XD_TIB (1024LL * 1024 * 1024 * 1024)

/* The storage types, in the order of storage_type's values: one line each,
 * X(ID, name); backends/types.c defines xd_type_<name> for each, and the
 * enum (XD_TYPE_ID) and storage_type's allowed list follow from this. */
#define XD_STORAGE_TYPES(X) \
  X(REGULAR, regular) \
  X(MMAP, mmap) \
  X(DIRECT, direct) \
  X(TMPFS, tmpfs) \
  X(BLOCK, block) \
  X(SPARSE, sparse) \
  X(COMPRESSED, compressed) \
  X(HYBRID, hybrid)
#define XD_TYPE_CHOICE(id, name) "|" #name
/* "regular|mmap|...": the list with its leading '|' skipped */
#define XD_STORAGE_TYPE_CHOICES (&(XD_STORAGE_TYPES(XD_TYPE_CHOICE))[1])

/* clang-format off */
#define XD_SCHEMA(X) \
  /* [local] identity */ \
  X(local, base_directory,   STR,  "",        0, 0, NULL, 0, XD_ANY, "Directory that relative file names resolve against in programs linking libxdevice (empty: the current directory). fio jobs use fio's own directory= option: a job with a relative file name and a base_directory is refused in one line") \
  X(local, storage_type,     ENUM, "regular", 0, 0, XD_STORAGE_TYPE_CHOICES, 0, XD_ANY, "Storage type: the preset chain of driver and layers (fio option xd_type is short for it)") \
  X(local, file_permissions, MODE, "0644",    0, 07777, NULL, 0, XD_ANY, "Mode, in octal, of files xdevice creates (data files, stats, logs, traces, maps, locks, backups; set exactly, whatever the umask, on the files it makes itself)") \
  X(local, dir_permissions,  MODE, "0755",    0, 07777, NULL, 0, XD_ANY, "Mode, in octal, of directories xdevice creates (auto_create_dirs, stats fragments, tmpfs and backup directories)") \
  X(local, allow_shared_directories, BOOL, "false", 0, 0, NULL, 0, XD_ANY, "Create xdevice's own files (stats, logs, traces, maps, locks, tmpfs data, backups) in a directory owned by another user, or writable by others without the sticky bit. Off: such a directory is refused, since whoever controls it can redirect the files with symlinks") \
  /* [local] I/O */ \
  X(local, async,            ENUM, "sync",    0, 0, "sync|libaio|io_uring", 0, XD_ANY, "How the driver completes requests: sync (pread/pwrite), libaio or io_uring queues") \
  X(local, use_direct_io,    BOOL, "false",   0, 0, NULL, 0, XD_ANY, "Open files with O_DIRECT (the direct type sets it)") \
  X(local, use_sync_writes,  BOOL, "false",   0, 0, NULL, 0, XD_ANY, "Open files with O_SYNC so every write is durable on return (the mmap type fdatasyncs each write); not with write-back (enable_write_cache, tier_write_back), which completes writes before the file has them. fio's sync=1 sets it") \
  X(local, update_access_time, BOOL, "false", 0, 0, NULL, 0, XD_ANY, "Let reads update data files' access time (atime). Off: data files are opened O_NOATIME where the kernel allows it (the file's owner, or root), which spares every read the kernel's atime check; turn on where a cleaner or a backup relies on atime") \
  X(local, use_mmap,         BOOL, "false",   0, 0, NULL, 0, XD_ANY, "Serve I/O through memory mappings (the mmap type sets it)") \
  X(local, mmap_size,        SIZE, "64m",     4 * XD_KIB, XD_TIB, NULL, 0, XD_ON(MMAP), "Size of each mmap window; a file is mapped window by window on demand, and may span at most 16M windows (1 PiB at 64m)") \
  X(local, io_alignment,     SIZE, "4k",      512, 64 * XD_KIB, NULL, 0, XD_ANY, "Alignment, a power of two, of O_DIRECT offsets, lengths and buffers; unaligned requests go through bounce buffers") \
  X(local, read_ahead_kb,    INT,  "128",     0, 1048576, NULL, XD_K_LIVE, XD_ANY, "Readahead hint in KiB (posix_fadvise WILLNEED ahead of sequential reads); 0 disables it and advises RANDOM") \
  /* [local] cache */ \
  X(local, enable_page_cache,  BOOL, "true",  0, 0, NULL, 0, XD_ANY, "Let the OS page cache hold data; false drops pages after each I/O (POSIX_FADV_DONTNEED). The compressed type, also as a hybrid cold tier, always works through the page cache: storage_type=compressed refuses false") \
  X(local, enable_read_cache,  BOOL, "false", 0, 0, NULL, 0, XD_ANY, "xdevice's own in-memory block cache (the cache layer, under stats on every type; the compressed type caches decompressed data). One cache per process, shared by its jobs: the first job to open it sets cache_size, cache_block_size, cache_policy and cache_ttl, and a job asking for others is refused") \
  X(local, enable_write_cache, BOOL, "false", 0, 0, NULL, 0, XD_ANY, "Write-back: writes of whole blocks, or into cached blocks, complete in the cache and a background flusher writes them below; fsync, fdatasync, close and invalidate write a file's dirty blocks first, and at most half the cache is dirty. Needs enable_read_cache=true; false is write-through") \
  X(local, cache_size,         SIZE, "64m",   0, 64 * XD_GIB, NULL, XD_K_LIVE, XD_ANY, "Memory for the cache's block data, at least 16 blocks; each block costs about 96 bytes more (entries, policy, hash). Live: xd_reload (the engine's config reload) resizes the process's cache in place") \
  X(local, cache_ttl,          INT,  "0",     0, 86400 * 365, NULL, 0, XD_ANY, "Seconds a clean cached block stays valid, 0 for no expiry; dirty blocks never expire") \
  X(local, cache_block_size,   SIZE, "4k",    512, XD_MIB, NULL, 0, XD_ANY, "Unit the cache stores, a power of two, aligned to file offsets; a read that covers a block only partly goes down widened to whole blocks (up to 256 KiB), so a miss fills every block it touches") \
  X(local, cache_policy,       ENUM, "s3fifo", 0, 0, "s3fifo|lru", 0, XD_ANY, "Eviction: s3fifo (S3-FIFO: a small FIFO that filters one-hit blocks, a main FIFO with reinsertion, a ghost of evicted keys; a frequency sketch decides which blocks enter main once it is full) or lru") \
  X(local, trace,              STR,  "",      0, 0, NULL, 0, XD_ANY, "Append the block access trace (one record per cache block a request touches: op, file id, block index) to this file, for xdcachesim; works with or without enable_read_cache. Empty: none") \
  /* [local] aio and files */ \
  X(local, use_aio,           BOOL, "true",  0, 0, NULL, 0, XD_ANY, "Allow asynchronous I/O; false requires async=sync") \
  X(local, max_events,        INT,  "128",   1, 65536, NULL, 0, XD_ANY, "Minimum size of the libaio/io_uring queue; the engine raises it to fio's iodepth") \
  X(local, max_open_files,    INT,  "1024",  1, 1048576, NULL, 0, XD_ANY, "Upper bound on file descriptors the fd cache keeps open; the least recently used is closed past it, or when an open finds the process out of descriptors, and reopened by name when next used (ESTALE once the name holds another file or none)") \
  X(local, auto_create_dirs,  BOOL, "true",  0, 0, NULL, 0, XD_ANY, "Create missing parent directories of data files") \
  X(local, preallocate_files, BOOL, "false", 0, 0, NULL, 0, XD_ANY, "Reserve file space up front (fallocate, or ftruncate when use_fallocate=false)") \
  X(local, default_file_size, SIZE, "0",     0, 16 * XD_TIB, NULL, 0, XD_ANY, "Size given to a new file on create when the caller names none (0: none)") \
  X(local, extent_size,       SIZE, "1m",    4 * XD_KIB, XD_GIB, NULL, 0, XD_ANY, "Step in which preallocation grows files") \
  X(local, use_fallocate,     BOOL, "true",  0, 0, NULL, 0, XD_ANY, "Preallocate with fallocate(2) rather than ftruncate") \
  /* [local] sparse */ \
  X(local, enable_sparse,        BOOL, "false", 0, 0, NULL, 0, XD_ANY, "Punch holes for all-zero blocks: the sparse type turns it on; on regular, direct and tmpfs it adds the sparse layer") \
  X(local, hole_detection_size,  SIZE, "4k",    512, 64 * XD_MIB, NULL, 0, XD_ANY, "Block size, a power of two, scanned for zeros; aligned all-zero blocks of this size become holes") \
  X(local, zero_block_threshold, INT,  "1",     1, 1048576, NULL, 0, XD_ANY, "Zero blocks a write needs before it is split around them; below it the write goes down whole (zeros written, not punched)") \
  /* [local] compression */ \
  X(local, enable_compression,    BOOL, "true",  0, 0, NULL, 0, XD_ON(COMPRESSED), "Compress the compressed type's chunks; false stores them raw (still checksummed). Only the compressed type reads it") \
  X(local, compression_type,      ENUM, "lz4",   0, 0, "lz4|zstd|snappy|gzip|brotli", 0, XD_ON(COMPRESSED), "Codec for new chunks; each chunk records its own, so a container can mix them") \
  X(local, compression_level,     INT,  "1",     1, 22, NULL, XD_K_LIVE, XD_ON(COMPRESSED), "Codec level: lz4 1-12 (above 3 is lz4hc), zstd 1-22, gzip 1-9, brotli 1-11; snappy has none") \
  X(local, compression_threshold, FLOAT, "12.5", 0, 99, NULL, 0, XD_ON(COMPRESSED), "Minimum saving in percent to keep a chunk compressed; a chunk that saves less is stored raw") \
  X(local, adaptive_compression,  BOOL, "false", 0, 0, NULL, 0, XD_ON(COMPRESSED), "Stop trying to compress while the running ratio is poor, probing again at growing intervals") \
  X(local, compress_chunk_size,   SIZE, "64k",   4 * XD_KIB, 4 * XD_MIB, NULL, 0, XD_ON(COMPRESSED), "Logical chunk, a power of two, that is compressed on its own; fixed when a container is created") \
  X(local, compress_cache_size,   SIZE, "256m",  0, 64 * XD_GIB, NULL, 0, XD_ON(COMPRESSED), "Memory for decompressed chunks, per device, so that reads of a chunk decode it once, not once per read: taken as chunks are read, given back at close; each cached chunk is served only while the chunk map still names the version it holds. 0 turns it off; otherwise at least one chunk (compress_chunk_size)") \
  /* [hybrid] */ \
  X(hybrid, hot_storage_type,       ENUM, "tmpfs",   0, 0, "tmpfs", 0, XD_ON(HYBRID), "Hot tier type: the hybrid type keeps its hot extents in the tmpfs type's chain") \
  X(hybrid, hot_directory,          STR,  "",        0, 0, NULL, 0, XD_ON(HYBRID), "Directory on a tmpfs for the hot tier's copies (empty: tmpfs_directory)") \
  X(hybrid, hot_cache_size,         SIZE, "256m",    4 * XD_KIB, 64 * XD_GIB, NULL, XD_K_LIVE, XD_ON(HYBRID), "Hot tier capacity per file; when it is full the coldest hot extent is demoted to make room") \
  X(hybrid, hot_access_threshold,   INT,  "3",       1, 1000000, NULL, XD_K_LIVE, XD_ON(HYBRID), "Accesses to an extent within one cold_timeout_sec window that make it a candidate for promotion") \
  X(hybrid, cold_storage_type,      ENUM, "regular", 0, 0, "regular|mmap|direct|sparse|compressed", 0, XD_ON(HYBRID), "Cold tier type: the chain that holds every extent (the file named by the caller, or its name under cold_directory)") \
  X(hybrid, cold_directory,         STR,  "",        0, 0, NULL, 0, XD_ON(HYBRID), "Directory of the cold tier's files (empty: where the caller's path points; a relative one from the working directory, not base_directory)") \
  X(hybrid, cold_timeout_sec,       FLOAT, "300",    0.05, 86400 * 365, NULL, XD_K_LIVE, XD_ON(HYBRID), "Seconds without access before a hot extent is demoted; also the window hot_access_threshold counts in") \
  X(hybrid, cold_enable_compression, BOOL, "false",  0, 0, NULL, 0, XD_ON(HYBRID), "Compress the cold tier: short for cold_storage_type=compressed (any other cold_storage_type conflicts)") \
  X(hybrid, auto_migration,         BOOL, "true",    0, 0, NULL, 0, XD_ON(HYBRID), "Migrate on a background thread (xd-migrate) every migration_interval_sec; false migrates only when asked (xd_migrate)") \
  X(hybrid, migration_batch_size,   INT,  "64",      1, 1000000, NULL, XD_K_LIVE, XD_ON(HYBRID), "Most promotions plus demotions in one migration pass") \
  X(hybrid, migration_interval_sec, FLOAT, "5",      0.01, 86400, NULL, XD_K_LIVE, XD_ON(HYBRID), "Seconds between migration passes (fractions allowed, down to 0.01)") \
  X(hybrid, migration_interval_requests, INT, "0",  0, 1000000000, NULL, XD_K_LIVE, XD_ON(HYBRID), "Also run a migration pass, in the submitting thread, after every this many requests to a hybrid file (all jobs of the process together); 0 for none. Passes then follow the workload, not the clock") \
  X(hybrid, tier_extent_size,       SIZE, "1m",      4 * XD_KIB, XD_GIB, NULL, 0, XD_ON(HYBRID), "Unit, a power of two, in which the hybrid type counts accesses and migrates data") \
  X(hybrid, tier_sequential_cutoff, SIZE, "4m",      0, XD_TIB, NULL, XD_K_LIVE, XD_ON(HYBRID), "A sequential stream's requests (each starting where the one before ended) stop counting as accesses toward promotion once the stream has run this far, so a scan does not fill the hot tier with data read once (as bcache's sequential_cutoff); hot extents it reads are still read hot. 0 counts every request") \
  X(hybrid, tier_write_back,        BOOL, "false",   0, 0, NULL, 0, XD_ON(HYBRID), "Writes to hot extents go to the hot tier only and are flushed to the cold tier at fsync, fdatasync, demotion and close; false writes through to both") \
  /* [tmpfs] */ \
  X(tmpfs, tmpfs_directory,     STR,  "",      0, 0, NULL, 0, XD_ON(TMPFS), "Where the tmpfs type keeps data; with auto_mount a tmpfs is mounted here, otherwise it must already be on tmpfs. Empty: /dev/shm/xdevice-UID, private to the user (made with mode 0700, its owner checked)") \
  X(tmpfs, tmpfs_size,          SIZE, "1g",    XD_MIB, 16 * XD_TIB, NULL, 0, XD_ON(TMPFS), "size= of the tmpfs that auto_mount mounts") \
  X(tmpfs, tmpfs_mount_options, STR,  "mode=0755", 0, 0, NULL, 0, XD_ON(TMPFS), "Extra options for the tmpfs that auto_mount mounts (comma separated, size comes from tmpfs_size). Adding huge=within_size lets dense files use large pages (128k reads and writes ran 2x and 2.5x faster here), but a sparse file then takes up to 2 MiB per page touched (16 scattered 4 KiB writes into a 64 MiB file took 32 MiB, not 64 KiB), so it is not the default") \
  X(tmpfs, auto_mount,          BOOL, "false", 0, 0, NULL, 0, XD_ON(TMPFS), "Mount a tmpfs at tmpfs_directory when running as root (only on a directory xdevice makes there, never over an existing one; unmounted when its last user closes); otherwise /dev/shm/xdevice-UID is used and a line says so") \
  X(tmpfs, backup_to_disk,      BOOL, "false", 0, 0, NULL, 0, XD_ON(TMPFS), "Copy tmpfs data written through the device to the job's on-disk file path every backup_interval_sec, on fsync and at close, never over a disk file changed since; load it on open when it changed since the tmpfs copy was taken") \
  X(tmpfs, backup_interval_sec, INT,  "60",    1, 86400, NULL, XD_K_LIVE, XD_ON(TMPFS), "Seconds between backups to disk") \
  /* [block] */ \
  X(block, block_device,    STR,  "",      0, 0, NULL, 0, XD_ON(BLOCK), "Block device path; empty uses fio's filename") \
  X(block, sector_size,     INT,  "0",     0, 65536, NULL, 0, XD_ON(BLOCK), "Logical sector size; 0 reads it with BLKSSZGET, otherwise it must be a multiple of the device's") \
  X(block, use_raw_device,  BOOL, "true",  0, 0, NULL, 0, XD_ON(BLOCK), "Open the device with O_DIRECT, bypassing the page cache") \
  X(block, enable_trim,     BOOL, "false", 0, 0, NULL, 0, XD_ON(BLOCK), "Serve trims with BLKDISCARD; when false a trim is refused with EOPNOTSUPP") \
  X(block, queue_depth,     INT,  "32",    1, 65536, NULL, 0, XD_ON(BLOCK), "Most requests in flight on the device; fio is told to commit past it") \
  /* [tuning] */ \
  X(tuning, enable_auto_tuning,     BOOL,  "false", 0, 0, NULL, 0, XD_ANY, "Let xdtune's daemon rewrite this config; the daemon refuses a config without it") \
  X(tuning, tuning_interval_sec,    INT,   "30",    1, 86400, NULL, 0, XD_ANY, "Seconds between xdtune daemon cycles (its --interval overrides it)") \
  X(tuning, target_latency_us,      INT,   "0",     0, 100000000, NULL, 0, XD_ANY, "Latency target in microseconds for xdtune; 0 for none") \
  X(tuning, target_iops,            INT,   "0",     0, 1000000000, NULL, 0, XD_ANY, "IOPS target for xdtune; 0 for none") \
  X(tuning, target_cache_hit_ratio, FLOAT, "0",     0, 1, NULL, 0, XD_ANY, "Cache hit ratio target for xdtune, 0 to 1; 0 for none") \
  X(tuning, config_file_mode,       MODE,  "0600",  0, 07777, NULL, 0, XD_ANY, "Mode, in octal, of config files xd_config_save (and so xdconfig set and xdtune) writes; the mode is set on the new file before it replaces the old one. Not set, a replaced file keeps its own mode") \
  /* [recovery] */ \
  X(recovery, enable_checkpoints,      BOOL, "false", 0, 0, NULL, 0, XD_ANY, "Copy every file open on the device into checkpoint_directory at a flush boundary every checkpoint_interval_sec (not with the block type; a hybrid file's cold file and map); build/xdcheckpoint lists, verifies and restores them") \
  X(recovery, checkpoint_interval_sec, INT,  "300",   1, 86400, NULL, 0, XD_ANY, "Seconds between checkpoints: the first fsync/fdatasync that completes after them takes one") \
  X(recovery, checkpoint_directory,    STR,  "",      0, 0, NULL, 0, XD_ANY, "Directory of the checkpoints (needed with enable_checkpoints): made with dir_permissions when missing; never a symlink, and the caller's") \
  X(recovery, max_retries,             INT,  "0",     0, 100, NULL, 0, XD_ANY, "Retries of a request that failed with a transient error (EIO, EAGAIN, EINTR, ETIMEDOUT; never ENOSPC, EINVAL or others); above 0 puts the retry layer in the chain. Async requests wait for their retry without blocking the queue") \
  X(recovery, retry_delay_ms,          INT,  "10",    0, 60000, NULL, 0, XD_ANY, "Milliseconds before the first retry of a request (max_retries)") \
  X(recovery, exponential_backoff,     BOOL, "true",  0, 0, NULL, 0, XD_ANY, "Double retry_delay_ms for each further retry of a request") \
  X(recovery, enable_checksums,        BOOL, "false", 0, 0, NULL, 0, XD_ANY, "A crc32c per checksum_block_size block, kept in a sidecar file <data file>.xdsum and checked on every read: a block that does not match reads as EIO. Not with the compressed type (its chunks carry their own crc32c); on the hybrid type it covers the logical data, above both tiers") \
  X(recovery, enable_redundancy,       BOOL, "false", 0, 0, NULL, 0, XD_ANY, "Keep every file as redundancy_factor copies (the mirror layer): writes go to all, reads fail over to another copy and repair the bad one. Types whose data is a plain file") \
  X(recovery, redundancy_factor,       INT,  "1",     1, 8, NULL, 0, XD_ANY, "Number of copies of each file, the caller's included, with enable_redundancy=true") \
  X(recovery, mirror_directories,      STR,  "",      0, 0, NULL, 0, XD_ANY, "Existing directories of the extra copies (enable_redundancy=true; refused without it), comma-separated, one per copy beyond the first (redundancy_factor - 1); a copy is <directory>/<the file's name>, never opened through a link and never another user's file. Each directory yours or root's, not writable by others unless sticky (allow_shared_directories), none named twice") \
  X(recovery, checksum_block_size,     SIZE, "4k",    512, XD_MIB, NULL, 0, XD_ANY, "Bytes covered by one crc32c (enable_checksums), a power of two; a write or read not on these boundaries completes inline, reading the rest of its blocks. A sidecar keeps the size it was made with") \
  X(recovery, checksum_directory,      STR,  "",      0, 0, NULL, 0, XD_ANY, "Directory of the checksum sidecars (enable_checksums), each named after its data file's whole path (\"%2Fdev%2Fsdb.xdsum\"); empty: <data file>.xdsum beside it. Needed with the block type: a sidecar in /dev would be on a devtmpfs, emptied at every boot") \
  X(recovery, checkpoint_keep,         INT,  "3",     1, 1000, NULL, 0, XD_ANY, "Checkpoints kept; the oldest goes when a new one is taken") \
  /* [fault] injection, for testing error handling (layers/fault.c) */ \
  X(fault, enable_fault_injection, BOOL,  "false", 0, 0, NULL, 0, XD_ANY, "Inject I/O faults just above the driver (the fault layer), for testing error handling: which requests fail is set by fault_every or fault_probability, deterministically from fault_seed") \
  X(fault, fault_seed,             INT,   "1",     0, 2147483647, NULL, 0, XD_ANY, "Seed of the fault layer's choices: the same seed and the same requests give the same faults") \
  X(fault, fault_ops,              ENUM,  "write", 0, 0, "read|write|both", 0, XD_ANY, "Which requests may fail") \
  X(fault, fault_every,            INT,   "0",     0, 1000000000, NULL, 0, XD_ANY, "Every Nth request of fault_ops (within fault_offset/fault_length) fails; 0 for none") \
  X(fault, fault_probability,      FLOAT, "0",     0, 1, NULL, 0, XD_ANY, "Probability that a request of fault_ops (within fault_offset/fault_length) fails, drawn from fault_seed") \
  X(fault, fault_errno,            ENUM,  "EIO",   0, 0, "EIO|ENOSPC|EAGAIN|EINTR|ETIMEDOUT|EROFS|ENOMEM", 0, XD_ANY, "The error a failed request returns") \
  X(fault, fault_persistent,       BOOL,  "false", 0, 0, NULL, 0, XD_ANY, "false: the next identical request after a failed one succeeds (a retry passes); true: the range stays bad and every later request of fault_ops touching it fails") \
  X(fault, fault_corrupt,          BOOL,  "false", 0, 0, NULL, 0, XD_ANY, "Failed reads succeed with bits flipped (one per 4 KiB) instead of returning an error") \
  X(fault, fault_drop_writes,      BOOL,  "false", 0, 0, NULL, 0, XD_ANY, "Chosen writes are acknowledged and held as a volatile write cache would: reads on the device see them, the next fsync/fdatasync of their file stores them, a close or crash before it loses them") \
  X(fault, fault_offset,           SIZE,  "0",     0, XD_TIB * 1024, NULL, 0, XD_ANY, "Faults only for requests that reach at or after this offset") \
  X(fault, fault_length,           SIZE,  "0",     0, XD_TIB * 1024, NULL, 0, XD_ANY, "Faults only for requests overlapping this many bytes from fault_offset; 0 to the end") \
  /* [monitoring] */ \
  X(monitoring, enable_metrics,              BOOL, "true",  0, 0, NULL, 0, XD_ANY, "Collect per-op counts and latency histograms (the stats layer); false leaves the stats JSON with zero ops") \
  X(monitoring, metrics_interval_sec,        INT,  "0",     0, 86400, NULL, 0, XD_ANY, "Seconds between periodic stats records, 0 for none. The fio engine (option xd_stats_interval is short for it) appends one JSON line per job and interval to xd_stats_log, or to the xd_stats file's name plus .jsonl; programs linking libxdevice call xd_stats_interval_json") \
  X(monitoring, log_slow_operations,         BOOL, "true",  0, 0, NULL, 0, XD_ANY, "Count and log operations slower than slow_operation_threshold_ms") \
  X(monitoring, slow_operation_threshold_ms, INT,  "100",   1, 3600000, NULL, XD_K_LIVE, XD_ANY, "Latency in milliseconds above which an operation counts as slow") \
  X(monitoring, enable_health_check,         BOOL, "false", 0, 0, NULL, 0, XD_ANY, "Check at open and every health_check_interval_sec that the directories and devices the config names exist, are usable and not full, that a tmpfs directory is on a tmpfs, and that the layers count no degraded mirror, checksum mismatch or failed retry; each problem is told once (the fio engine prints it) and the periodic stats record carries the report as \"health\". xdconfig health FILE.ini runs the same check on demand") \
  X(monitoring, health_check_interval_sec,   INT,  "60",    1, 86400, NULL, 0, XD_ANY, "Seconds between health checks (enable_health_check)")
/* clang-format on */

/* Tunable keys: the dimensions xdtune searches, with their bounds and steps.
 * Type, allowed values and whether a key is live come from XD_SCHEMA.
 *
 * Columns: T(key, lo, hi, step, scale)
 *   lo/hi   the range searched (within the key's schema bounds); ignored for
 *           BOOL and ENUM, whose values are false/true (xdtune tries the
 *           default first) and the allowed list
 *   step    the smallest useful change: added on a linear scale, multiplied
 *           by on a log scale (2: powers of two; lo is then above 0)
 *   scale   LIN or LOG
 */
/* clang-format off */
#define XD_TUNABLES(T) \
  T(storage_type,         0, 0, 1, LIN) \
  T(async,                0, 0, 1, LIN) \
  T(max_events,           1, 1024, 2, LOG) \
  T(use_direct_io,        0, 0, 1, LIN) \
  T(read_ahead_kb,        8, 16384, 2, LOG) \
  T(cache_size,           XD_MIB, 16 * XD_GIB, 2, LOG) \
  T(cache_policy,         0, 0, 1, LIN) \
  T(compression_type,     0, 0, 1, LIN) \
  T(compression_level,    1, 22, 1, LIN) \
  T(compress_chunk_size,  4 * XD_KIB, 4 * XD_MIB, 2, LOG) \
  T(hot_cache_size,       16 * XD_MIB, 64 * XD_GIB, 2, LOG) \
  T(hot_access_threshold, 1, 1000, 2, LOG) \
  T(cold_timeout_sec,     1, 86400, 2, LOG) \
  T(tier_extent_size,     4 * XD_KIB, 64 * XD_MIB, 2, LOG) \
  T(tier_sequential_cutoff, 256 * XD_KIB, 64 * XD_GIB, 4, LOG) \
  T(enable_read_cache,    0, 0, 1, LIN) \
  T(enable_page_cache,    0, 0, 1, LIN)

/* clang-format on */

#endif
