// Snapshot files: the format (format.ts), writing them (writer.ts), reading them (reader.ts).

export {
  DEFAULT_LIMITS, FORMAT_MAJOR, FORMAT_MINOR, PAGE_SIZE, SnapshotError,
  type JsonValue, type ManifestRegion, type ParentReference, type SnapshotErrorCode, type SnapshotLimits, type SnapshotManifest,
} from './format.js';
export {
  writeSnapshot, type MemoryRegionInput, type MemorySource, type SnapshotContents, type WriteOptions, type WriteProgress,
  type WriteResult,
} from './writer.js';
export {
  openSnapshot, verifySnapshot, Snapshot, SnapshotFile, type MemoryExtent, type OpenOptions, type SnapshotSection,
  type VerifyProgress,
} from './reader.js';
