#include "rocksdb_scan.h"

#include <rocksdb/db.h>

#include <memory>
#include <vector>

namespace profiled::testing {
namespace {

// Every column family of the database at `path`, opened read-only or not.
struct OpenedDb {
  std::vector<std::string> names;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::unique_ptr<rocksdb::DB> db;
  ~OpenedDb() {
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  }
};

absl::Status Open(const std::string& path, bool read_only, OpenedDb& out) {
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &out.names);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : out.names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::DB* raw = nullptr;
  s = read_only ? rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, descriptors,
                                               &out.handles, &raw)
                : rocksdb::DB::Open(rocksdb::DBOptions(), path, descriptors, &out.handles, &raw);
  if (!s.ok()) return absl::InternalError(s.ToString());
  out.db.reset(raw);
  return absl::OkStatus();
}

}  // namespace

absl::Status ScanRocksDb(
    const std::string& path,
    const std::function<void(std::string_view cf, std::string_view key, std::string_view value)>&
        visit) {
  OpenedDb opened;
  if (absl::Status s = Open(path, /*read_only=*/true, opened); !s.ok()) return s;
  for (size_t i = 0; i < opened.handles.size(); ++i) {
    std::unique_ptr<rocksdb::Iterator> it(
        opened.db->NewIterator(rocksdb::ReadOptions(), opened.handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      visit(opened.names[i], std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size()));
    }
    if (!it->status().ok()) return absl::InternalError(it->status().ToString());
  }
  return absl::OkStatus();
}

absl::Status DeleteRawKey(const std::string& path, const std::string& column_family,
                          const std::string& key) {
  OpenedDb opened;
  if (absl::Status s = Open(path, /*read_only=*/false, opened); !s.ok()) return s;
  for (size_t i = 0; i < opened.handles.size(); ++i) {
    if (opened.names[i] != column_family) continue;
    rocksdb::Status s = opened.db->Delete(rocksdb::WriteOptions(), opened.handles[i], key);
    if (!s.ok()) return absl::InternalError(s.ToString());
  }
  return absl::OkStatus();
}

}  // namespace profiled::testing
