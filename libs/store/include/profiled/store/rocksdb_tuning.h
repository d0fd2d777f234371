// The RocksDB options of the profiles and identity-graph column families,
// tuned for their workload (point lookups of hot keys, frequent rewrites).
// Public so the benchmarks' raw RocksDB baseline uses exactly the same.
//
//   rocksdb::ColumnFamilyOptions cf = ProfileColumnFamilyOptions(rocksdb::NewLRUCache(64 << 20));
#pragma once

#include <memory>

#include <rocksdb/cache.h>
#include <rocksdb/options.h>

namespace profiled::store {

rocksdb::ColumnFamilyOptions ProfileColumnFamilyOptions(std::shared_ptr<rocksdb::Cache> block_cache);

}  // namespace profiled::store
