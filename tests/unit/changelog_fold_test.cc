// ChangelogFold's epochs (pure): records an older owner writes after a
// newer owner's claim are skipped, whatever their key; records before the
// claim, tombstones, and a fold that knows no record epochs are not.
#include <map>

#include "profiled/cluster/changelog.h"
#include "profiled/cluster/protocol_codec.h"
#include "support/test_support.h"

namespace profiled::cluster {
namespace {

std::string Slot(int64_t epoch, int64_t applied) {
  internal::v1::SlotValue v;
  v.set_epoch(epoch);
  v.set_applied(applied);
  v.set_state(std::string(40, 's'));  // fields around the epoch are skipped, not misread
  return v.SerializeAsString();
}

std::string Marker(int64_t next, int64_t epoch, bool claim = false) {
  ChangelogMarker m;
  m.set_next_offset(next);
  m.set_epoch(epoch);
  m.set_claim(claim);
  return m.SerializeAsString();
}

struct Folded {
  std::map<std::string, std::optional<std::string>> state;
  RestoreResult result;
};

Folded Fold(const std::vector<std::pair<std::string, std::optional<std::string>>>& log,
            EpochOf epoch_of) {
  Folded out;
  ChangelogFold fold(
      [&](std::string_view key, std::optional<std::string_view> value) {
        out.state[std::string(key)] =
            value ? std::optional<std::string>(std::string(*value)) : std::nullopt;
        return absl::OkStatus();
      },
      0, static_cast<int64_t>(log.size()), std::move(epoch_of));
  for (size_t i = 0; i < log.size(); ++i) {
    kafka::LogRecord r;
    r.offset = static_cast<int64_t>(i);
    r.key = log[i].first;
    if (log[i].second) r.value = *log[i].second;
    REQUIRE_OK(fold.Apply(r));
  }
  out.result = fold.result();
  return out;
}

const std::string kMarker(kMarkerKey);

TEST_CASE("a slot's epoch is read without parsing the rest", "[unit][cluster][changelog]") {
  CHECK(SlotEpoch(Slot(1234567890123, 5)) == 1234567890123);
  CHECK(SlotEpoch(Slot(0, 5)) == 0);
  CHECK(SlotEpoch("") == 0);
  CHECK(SlotEpoch("\xff\xff\xff") == 0);  // damaged: no epoch
  std::string cut = Slot(77, 5);
  CHECK(SlotEpoch(cut.substr(0, cut.size() - 1)) == 0);
}

TEST_CASE("records an older owner writes after a claim are skipped, earlier ones kept",
          "[unit][cluster][changelog]") {
  // Owner A (epoch 0) writes, B claims at offset 3, A writes late (a zombie),
  // B writes; then C claims at offset 8 and B's late write is skipped too.
  const std::vector<std::pair<std::string, std::optional<std::string>>> log = {
      {"k1", Slot(0, 10)},             // 0: A
      {"k2", Slot(0, 11)},             // 1: A
      {kMarker, Marker(12, 0)},        // 2: A's marker
      {kMarker, Marker(12, 0, true)},  // 3: B's claim: epoch 3
      {"k1", Slot(0, 9)},              // 4: A, late: older value
      {kMarker, Marker(10, 0)},        // 5: A's late marker
      {"k2", Slot(3, 14)},             // 6: B
      {kMarker, Marker(15, 3)},        // 7: B's marker
      {kMarker, Marker(15, 0, true)},  // 8: C's claim: epoch 8
      {"k3", Slot(3, 16)},             // 9: B, late
      {"k4", std::nullopt},            // 10: a tombstone carries no epoch: kept
  };
  const Folded f = Fold(log, SlotEpoch);
  CHECK(f.state.at("k1") == Slot(0, 10));
  CHECK(f.state.at("k2") == Slot(3, 14));
  CHECK_FALSE(f.state.contains("k3"));
  CHECK(f.state.at("k4") == std::nullopt);
  CHECK(f.result.fenced_keys == std::vector<std::string>{"k1", "k3"});
  CHECK(f.result.epoch == 8);
  REQUIRE(f.result.marker.has_value());
  CHECK(f.result.marker->next_offset() == 15);
  CHECK(f.result.marker->epoch() == 8);  // the claim's epoch is its offset
  CHECK_FALSE(f.result.marker->claim());
  CHECK(f.result.marker_offset == 8);
  CHECK(f.result.progress.fenced == 3);   // offsets 4, 5 and 9
  CHECK(f.result.progress.records == 4);  // offsets 0, 1, 6 and 10

  // Without record epochs only markers are judged: A's late slot is taken.
  const Folded blind = Fold(log, nullptr);
  CHECK(blind.state.at("k1") == Slot(0, 9));
  CHECK(blind.result.marker->next_offset() == 15);
}

TEST_CASE("fencing survives compaction removing the claims: a kept record's epoch counts",
          "[unit][cluster][changelog]") {
  // B's claim (epoch 3) is gone, superseded by B's later marker; A's late
  // record after B's slot is still a zombie's.
  const Folded f = Fold({{"k1", Slot(0, 10)},
                         {"k2", Slot(3, 14)},
                         {"k1", Slot(0, 9)},
                         {kMarker, Marker(15, 3)},
                         {kMarker, Marker(12, 0)}},
                        SlotEpoch);
  CHECK(f.state.at("k1") == Slot(0, 10));
  CHECK(f.result.epoch == 3);
  CHECK(f.result.marker->next_offset() == 15);
  CHECK(f.result.fenced_keys == std::vector<std::string>{"k1"});
  CHECK(f.result.progress.fenced == 2);
}

TEST_CASE("a changelog with no claim restores as before epochs existed",
          "[unit][cluster][changelog]") {
  const Folded f =
      Fold({{"k1", Slot(0, 1)}, {kMarker, Marker(2, 0)}, {"k1", Slot(0, 3)}}, SlotEpoch);
  CHECK(f.state.at("k1") == Slot(0, 3));
  CHECK(f.result.epoch == 0);
  CHECK(f.result.marker->next_offset() == 2);
  CHECK(f.result.progress.fenced == 0);
}

}  // namespace
}  // namespace profiled::cluster
