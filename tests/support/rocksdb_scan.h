// Reads every column family of a RocksDB directory directly (read-only),
// bypassing the store's own API: for tests that must prove what is — and is
// not — on disk.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace profiled::testing {

// Calls `visit(column_family, key, value)` for every entry of every column
// family. The database must not be open for writing elsewhere.
absl::Status ScanRocksDb(
    const std::string& path,
    const std::function<void(std::string_view cf, std::string_view key, std::string_view value)>&
        visit);

// Deletes one key of one column family directly (the database must not be
// open elsewhere): for tests that recreate what an older version wrote.
absl::Status DeleteRawKey(const std::string& path, const std::string& column_family,
                          const std::string& key);

}  // namespace profiled::testing
