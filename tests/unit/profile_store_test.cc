#include "profiled/store/profile_store.h"

#include "profiled/base/failpoint.h"
#include "support/rocksdb_scan.h"
#include "support/test_support.h"

namespace profiled::store {
namespace {

std::unique_ptr<ProfileStore> OpenAt(const std::string& path) {
  StoreOptions options;
  options.path = path;
  auto store = ProfileStore::Open(options);
  REQUIRE_OK(store.status());
  return std::move(*store);
}

TEST_CASE("a commit writes profiles, outbox and positions together", "[store]") {
  testing::TempDir dir;
  {
    auto store = OpenAt(dir.path());
    CommitBatch batch;
    batch.profiles = {{"p-1", "state-1"}, {"p-2", "state-2"}};
    batch.outbox = {"update-1", "update-2"};
    batch.positions = {{"events", 3, 42, 1000}, {"events", 0, 7, 900}};
    REQUIRE_OK(store->Commit(batch));
    CHECK(store->OutboxDepth() == 2);
  }
  // Everything is there after reopening.
  auto store = OpenAt(dir.path());
  std::vector<std::optional<std::string>> got;
  REQUIRE_OK(store->MultiGet({"p-2", "p-missing", "p-1"}, got));
  CHECK(got[0] == "state-2");
  CHECK_FALSE(got[1].has_value());
  CHECK(got[2] == "state-1");

  auto positions = store->LoadPositions();
  REQUIRE_OK(positions.status());
  REQUIRE(positions->size() == 2);
  CHECK((*positions)[0].partition == 0);
  CHECK((*positions)[0].next_offset == 7);
  CHECK((*positions)[1].partition == 3);
  CHECK((*positions)[1].next_offset == 42);
  CHECK((*positions)[1].stream_time_ms == 1000);

  CHECK(store->OutboxDepth() == 2);
  std::vector<OutboxEntry> outbox;
  REQUIRE_OK(store->ReadOutbox(0, 10, outbox));
  REQUIRE(outbox.size() == 2);
  CHECK(outbox[0].record == "update-1");
  CHECK(outbox[1].seq == outbox[0].seq + 1);
}

TEST_CASE("outbox sequence numbers keep growing across deletes and restarts", "[store]") {
  testing::TempDir dir;
  uint64_t last_seq = 0;
  {
    auto store = OpenAt(dir.path());
    for (int i = 0; i < 3; ++i) {
      CommitBatch b;
      b.outbox = {"u" + std::to_string(i)};
      REQUIRE_OK(store->Commit(b));
    }
    std::vector<OutboxEntry> all;
    REQUIRE_OK(store->ReadOutbox(0, 10, all));
    REQUIRE(all.size() == 3);
    REQUIRE_OK(store->DeleteOutbox({all[0].seq, all[1].seq}));
    CHECK(store->OutboxDepth() == 1);
    last_seq = all[2].seq;
  }
  auto store = OpenAt(dir.path());
  CHECK(store->OutboxDepth() == 1);
  CommitBatch b;
  b.outbox = {"after-restart"};
  REQUIRE_OK(store->Commit(b));
  std::vector<OutboxEntry> rest;
  REQUIRE_OK(store->ReadOutbox(last_seq, 10, rest));
  REQUIRE(rest.size() == 2);
  CHECK(rest[0].record == "u2");
  CHECK(rest[1].record == "after-restart");
  CHECK(rest[1].seq > last_seq);
}

TEST_CASE("the profile count moves with each batch and survives a reopen", "[store]") {
  testing::TempDir dir;
  {
    auto store = OpenAt(dir.path());
    CHECK(store->Stats().profiles == 0);
    CommitBatch created;
    created.profiles = {{"p-1", "a"}, {"p-2", "b"}, {"p-3", "c"}};
    created.profiles_added = 3;
    REQUIRE_OK(store->Commit(created));
    CommitBatch rewritten;  // new versions of existing profiles add nothing
    rewritten.profiles = {{"p-1", "a2"}, {"p-2", "b2"}};
    REQUIRE_OK(store->Commit(rewritten));
    CommitBatch merged;
    merged.profiles = {{"p-1", "a3"}};
    merged.deleted_profiles = {"p-2"};
    merged.profiles_added = -1;
    REQUIRE_OK(store->Commit(merged));
    CHECK(store->Stats().profiles == 2);
  }
  CHECK(OpenAt(dir.path())->Stats().profiles == 2);
}

TEST_CASE("profiles are read in pieces in id order, and settings survive a reopen", "[store]") {
  testing::TempDir dir;
  {
    auto store = OpenAt(dir.path());
    CommitBatch batch;
    for (const char* id : {"p-3", "p-1", "p-5", "p-2", "p-4"}) {
      batch.profiles.push_back({id, std::string("state-") + id});
    }
    REQUIRE_OK(store->Commit(batch));
    CHECK(store->ReadSetting("purchase_model")->has_value() == false);
    REQUIRE_OK(store->WriteSetting("purchase_model", "fit-1"));
    REQUIRE_OK(store->WriteSetting("purchase_model", "fit-2"));  // the newest stays
  }
  auto store = OpenAt(dir.path());
  absl::StatusOr<std::optional<std::string>> setting = store->ReadSetting("purchase_model");
  REQUIRE_OK(setting.status());
  CHECK(*setting == "fit-2");
  // Settings are not profiles, nor internal keys.
  CHECK(store->ReadSetting("profile_count")->has_value() == false);
  std::vector<std::string> seen;
  std::vector<std::pair<std::string, std::string>> piece;
  std::string after;
  for (int pieces = 0; pieces < 10; ++pieces) {
    REQUIRE_OK(store->ReadProfiles(after, 2, piece));
    CHECK(piece.size() <= 2);
    if (piece.empty()) break;
    for (const auto& [id, bytes] : piece) {
      CHECK(bytes == "state-" + id);
      seen.push_back(id);
    }
    after = piece.back().first;
  }
  CHECK(seen == std::vector<std::string>{"p-1", "p-2", "p-3", "p-4", "p-5"});
  REQUIRE_OK(store->ReadProfiles("p-2", 100, piece));  // strictly after
  REQUIRE(piece.size() == 3);
  CHECK(piece.front().first == "p-3");
  REQUIRE_OK(store->ReadProfiles("p-25", 100, piece));  // between two ids
  CHECK(piece.front().first == "p-3");
  REQUIRE_OK(store->ReadProfiles("p-5", 100, piece));
  CHECK(piece.empty());
}

TEST_CASE("a store written before the profile count existed is counted once on open", "[store]") {
  testing::TempDir dir;
  {
    auto store = OpenAt(dir.path());
    CommitBatch legacy;  // as written before the count existed: no delta
    legacy.profiles = {{"p-1", "a"}, {"p-2", "b"}};
    REQUIRE_OK(store->Commit(legacy));
  }
  // Drop the kept count, as a store from before it would be.
  REQUIRE_OK(testing::DeleteRawKey(dir.path(), "default", "profile_count"));
  CHECK(OpenAt(dir.path())->Stats().profiles == 2);
}

TEST_CASE("pending purges survive a restart and a purge leaves the database open", "[store]") {
  testing::TempDir dir;
  {
    auto store = OpenAt(dir.path());
    CommitBatch erased;
    erased.profiles = {{"p-keep", "state"}};
    erased.deleted_profiles = {"p-gone"};
    erased.purges_pending = {"req-1", "req-2"};
    REQUIRE_OK(store->Commit(erased));
  }
  auto store = OpenAt(dir.path());
  auto pending = store->PendingPurges();
  REQUIRE_OK(pending.status());
  CHECK(*pending == std::vector<std::string>{"req-1", "req-2"});
  PurgeKeys keys;
  keys.profile_ids = {"p-gone"};
  REQUIRE_OK(store->Purge(keys));  // reopens underneath
  PurgeKeys everything;
  everything.everything = true;
  REQUIRE_OK(store->Purge(everything));
  CommitBatch done;
  done.purges_done = {"req-1"};
  REQUIRE_OK(store->Commit(done));
  CHECK(*store->PendingPurges() == std::vector<std::string>{"req-2"});
  // Outbox numbers go on growing across the reopen, even with the outbox
  // emptied: the publisher's cursor is past the old ones.
  CommitBatch one;
  one.outbox = {"u1"};
  REQUIRE_OK(store->Commit(one));
  std::vector<OutboxEntry> entries;
  REQUIRE_OK(store->ReadOutbox(0, 10, entries));
  REQUIRE(entries.size() == 1);
  REQUIRE_OK(store->DeleteOutbox({entries[0].seq}));
  REQUIRE_OK(store->Purge(keys));
  CommitBatch two;
  two.outbox = {"u2"};
  REQUIRE_OK(store->Commit(two));
  REQUIRE_OK(store->ReadOutbox(entries[0].seq + 1, 10, entries));
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].record == "u2");
  CHECK(store->OutboxDepth() == 1);
  auto kept = store->Get("p-keep");
  REQUIRE_OK(kept.status());
  CHECK(*kept == "state");
  CHECK(store->Stats().profiles == 0);  // the batches above carried no count
}

TEST_CASE("a failed write is reported, and the store recovers once writes work", "[store]") {
  testing::TempDir dir;
  auto store = OpenAt(dir.path());
  internal::ArmFailpointErrors("store_write", 2);
  CommitBatch b;
  b.profiles = {{"p-1", "a"}};
  b.outbox = {"u"};
  CHECK(absl::IsUnavailable(store->Commit(b)));
  CHECK(absl::IsUnavailable(store->Commit(b)));
  CHECK(store->OutboxDepth() == 0);  // nothing of a failed commit counts
  REQUIRE_OK(store->Recover());
  REQUIRE_OK(store->Commit(b));
  CHECK(store->OutboxDepth() == 1);
  CHECK(*store->OldestOutboxSeq() == store->NextOutboxSeq() - 1);
}

TEST_CASE("a store path is required", "[store]") {
  StoreOptions options;
  CHECK(absl::IsInvalidArgument(ProfileStore::Open(options).status()));
}

}  // namespace
}  // namespace profiled::store
