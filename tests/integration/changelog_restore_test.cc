// Restoring a partition's state from its changelog through the broker:
// every record in order, the newest marker, and a truncated partition
// refused rather than restored in part.
#include "profiled/cluster/changelog.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "profiled/kafka/mock_cluster.h"
#include "support/test_support.h"

namespace profiled::cluster {
namespace {

struct Changelog {
  Changelog() {
    auto started = kafka::MockCluster::Start(1);
    REQUIRE_OK(started.status());
    cluster = std::move(*started);
    REQUIRE_OK(cluster->CreateTopic("profiled.profiles-changelog", 1));
    auto opened = kafka::PartitionLog::Open({{"bootstrap.servers", cluster->bootstrap()}},
                                            "profiled.profiles-changelog", 0);
    REQUIRE_OK(opened.status());
    log = std::move(*opened);
  }
  void Put(const std::string& key, std::optional<std::string> value) {
    REQUIRE_OK(log->Append(key, value, 5000).status());
  }
  void Mark(int64_t next_offset) {
    ChangelogMarker m;
    m.set_next_offset(next_offset);
    (*m.mutable_origin_watermarks())["profiled.identity:3"].set_offset(next_offset * 10);
    REQUIRE_OK(log->Append(kMarkerKey, m.SerializeAsString(), 5000).status());
  }
  std::unique_ptr<kafka::MockCluster> cluster;
  std::unique_ptr<kafka::PartitionLog> log;
};

TEST_CASE("a restore hands over every state record in order and resumes at the newest marker",
          "[integration][cluster][changelog]") {
  Changelog c;
  c.Put("p-a", "a1");
  c.Put("p-b", "b1");
  c.Mark(100);
  c.Put("p-a", "a2");
  c.Put("p-b", std::nullopt);  // erased
  c.Mark(250);
  c.Put("p-c", "c1");  // a batch half-published when its writer died

  std::map<std::string, std::optional<std::string>> state;
  std::vector<std::string> order;
  std::vector<RestoreProgress> reports;
  auto restored = RestoreChangelog(
      *c.log, "profiles-changelog/0",
      [&](std::string_view key, std::optional<std::string_view> value) {
        order.emplace_back(key);
        state[std::string(key)] = value ? std::optional<std::string>(*value) : std::nullopt;
        return absl::OkStatus();
      },
      [&](const RestoreProgress& p) { reports.push_back(p); }, 10'000);
  REQUIRE_OK(restored.status());
  CHECK(order == std::vector<std::string>{"p-a", "p-b", "p-a", "p-b", "p-c"});
  CHECK(state["p-a"] == "a2");
  CHECK(state["p-b"] == std::nullopt);
  CHECK(state["p-c"] == "c1");
  REQUIRE(restored->marker.has_value());
  CHECK(restored->marker->next_offset() == 250);
  CHECK(restored->marker->origin_watermarks().at("profiled.identity:3").offset() == 2500);
  CHECK(restored->marker_offset == 5);
  CHECK(restored->progress.records == 5);
  CHECK(restored->progress.next == 7);
  CHECK(restored->progress.high == 7);
  REQUIRE_FALSE(reports.empty());
  CHECK(reports.back().records == 5);
}

TEST_CASE("an empty changelog restores nothing and has no marker", "[integration][cluster][changelog]") {
  Changelog c;
  auto restored = RestoreChangelog(
      *c.log, "empty", [](std::string_view, std::optional<std::string_view>) {
        FAIL("no record expected");
        return absl::OkStatus();
      },
      nullptr, 10'000);
  REQUIRE_OK(restored.status());
  CHECK_FALSE(restored->marker.has_value());
  CHECK(restored->progress.high == 0);
}

TEST_CASE("a sink failure or an unreadable marker stops the restore with its reason",
          "[integration][cluster][changelog]") {
  Changelog c;
  c.Put("p-a", "a1");
  c.Put("p-b", "b1");
  int seen = 0;
  auto failed = RestoreChangelog(
      *c.log, "x",
      [&](std::string_view, std::optional<std::string_view>) {
        return ++seen == 1 ? absl::UnavailableError("disk full") : absl::OkStatus();
      },
      nullptr, 10'000);
  CHECK(absl::IsUnavailable(failed.status()));
  CHECK(seen == 1);

  c.Put(std::string(kMarkerKey), "\xff\xff\xff");
  auto corrupt = RestoreChangelog(
      *c.log, "x", [](std::string_view, std::optional<std::string_view>) { return absl::OkStatus(); },
      nullptr, 10'000);
  CHECK(absl::IsDataLoss(corrupt.status()));
}

TEST_CASE("reading past the end of a partition is the caller's mistake, not retention",
          "[integration][cluster][changelog]") {
  Changelog c;
  c.Put("p-a", "a1");
  absl::Status past = c.log->Read(5, 7, 3'000, [](const kafka::LogRecord&) { return absl::OkStatus(); });
  CHECK(absl::IsInvalidArgument(past));
  CHECK_THAT(std::string(past.message()), Catch::Contains("past its end (high watermark 1)"));
}

TEST_CASE("a changelog whose oldest records retention deleted is refused, never restored in part",
          "[integration][cluster][changelog]") {
  Changelog c;
  // The mock keeps ~5 MiB per partition and drops the oldest beyond it, as
  // retention on a misconfigured changelog would.
  const std::string value(64 * 1024, 'x');
  int64_t low = 0;
  for (int i = 0; i < 400 && low == 0; ++i) {
    c.Put(absl::StrCat("p-", i), value);
    if (i % 20 == 19) {
      auto range = c.log->Range(5000);
      REQUIRE_OK(range.status());
      low = range->low;
    }
  }
  REQUIRE(low > 0);
  auto restored = RestoreChangelog(
      *c.log, "profiles-changelog/0",
      [](std::string_view, std::optional<std::string_view>) { return absl::OkStatus(); }, nullptr,
      10'000);
  REQUIRE(absl::IsFailedPrecondition(restored.status()));
  CHECK_THAT(std::string(restored.status().message()),
             Catch::Contains(absl::StrCat("profiles-changelog/0 starts at offset ", low)));
}

}  // namespace
}  // namespace profiled::cluster
