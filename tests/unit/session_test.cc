// The session pump against an in-memory channel and server (the seam of transport.h's Channel):
// flow control, the close handshake, extra and missing results, a connection lost at every byte
// of a session, and reconnection. No sockets, no clocks beyond a few milliseconds.
#include "session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "protocol.h"
#include "text.h"

using namespace game;
using protocol::ResultMessage;

namespace {

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string describe(const protocol::Request& request) {
  if (const auto* score = std::get_if<protocol::AddScore>(&request))
    return "score " + std::to_string(score->value);
  return "setname " + std::get<protocol::SetUsername>(request).name;
}

// What the fake server holds and how it misbehaves. It outlives its channels, like a database.
struct FakeServer {
  int protocol = 2;
  // Protocol 2 storage: per stream, the seqs handled and their first outcome.
  std::map<protocol::StreamId, std::map<std::uint64_t, bool>> handled;  // seq -> accepted
  std::vector<std::uint64_t> applied;    // every seq applied, in order (exactly once = no repeats)
  std::set<std::int64_t> reject_values;  // addScore values the server rejects

  // Faults, counted over the whole server.
  std::uint64_t drop_after_client_bytes = 0;  // the connection dies once this many bytes came in
  bool deliver_before_drop = true;            // results already made reach the client first
  std::uint64_t drop_every = 0;               // then again after this many more bytes (0: once)
  bool drop_before_every_result = false;      // each channel applies a request, dies before its result
  bool extra_result = false;                  // every result twice
  bool unknown_seq = false;                   // the first result carries a seq never sent
  bool close_early = false;                   // protocol 1: close after answering all but one
  std::uint64_t drop_after_results = 0;       // protocol 1: reset after this many responses
  bool extra_after_eof = false;               // protocol 1: one response too many after our EOF
  std::size_t max_read =
      0;  // bytes a read hands out (0: all there are); a dead channel's rest stays readable

  std::uint64_t client_bytes = 0;
  std::uint64_t results_sent = 0;
  int channels = 0;
  std::vector<std::string> writes;                // every write the client made, on every channel
  std::map<std::uint64_t, std::string> contents;  // seq -> its request, described (a resend must match)
};

class FakeChannel : public Channel {
 public:
  FakeChannel(FakeServer& server, std::uint32_t window) : server_(server), window_(window) {
    ++server_.channels;
    name_ = "fake" + std::to_string(server_.channels) + ":9022";
  }

  std::uint32_t window() const override { return dead_ ? 0 : window_; }

  Status write(std::string_view bytes) override {
    if (dead_) return lost();
    EXPECT_LE(bytes.size(), window_) << "a write larger than the window";
    // A pump that has nothing to write must wait, not write nothing in a loop (a real channel
    // accepts an empty write, and the pump then spun without ever timing out).
    if (bytes.empty()) {
      ADD_FAILURE() << "an empty write";
      return make_error(Exit::kIoErr, "an empty write");
    }
    server_.writes.emplace_back(bytes);
    for (const char c : bytes) {
      if (server_.drop_after_client_bytes != 0 && server_.client_bytes == server_.drop_after_client_bytes) {
        die();
        return {};  // the bytes left the client; the connection died on the way
      }
      ++server_.client_bytes;
      input_ += c;
      consume();
      if (dead_) return {};
    }
    return {};
  }

  Result<bool> read_available(std::string& out) override {
    const std::size_t n = server_.max_read == 0 ? output_.size() : std::min(server_.max_read, output_.size());
    out += output_.substr(0, n);
    output_.erase(0, n);
    if (dead_) return output_.empty() ? Result<bool>(lost()) : Result<bool>(true);
    return !server_eof_;
  }

  Status send_eof() override {
    if (dead_) return lost();
    client_eof_ = true;
    if (server_.protocol == 1 && server_.extra_after_eof) output_ += from_hex("a0020500");
    server_eof_ = true;  // every result was made as its request arrived
    return {};
  }
  Status close() override {
    if (dead_) return lost();
    return {};
  }
  bool remote_closed() const override { return server_eof_; }
  Status wait(std::initializer_list<int>, Clock::time_point) override { return {}; }
  std::string peer() const override { return name_; }

 private:
  Error lost() const { return make_error(Exit::kUnavailable, name_ + ": connection lost"); }

  void die() {
    if (!server_.deliver_before_drop) output_.clear();
    dead_ = true;
    server_.drop_after_client_bytes = server_.drop_every == 0 ? 0 : server_.client_bytes + server_.drop_every;
  }

  void consume() {
    if (server_.protocol == 1) return consume_v1();
    reader_.feed(input_.data(), input_.size());
    input_.clear();
    for (;;) {
      auto message = reader_.next();
      ASSERT_TRUE(message) << message.error().message;
      if (!*message) return;
      if ((*message)->kind == protocol::ClientMessage::Kind::kOpen) {
        stream_ = (*message)->stream;
        auto& seqs = server_.handled[stream_];
        protocol::encode_server_message(protocol::Opened{seqs.empty() ? 0 : seqs.rbegin()->first}, output_);
        continue;
      }
      const std::uint64_t seq = (*message)->seq;
      const auto& request = std::get<protocol::Request>((*message)->submission);
      const auto first_copy = server_.contents.emplace(seq, describe(request)).first;
      EXPECT_EQ(first_copy->second, describe(request)) << "seq " << seq << " resent with other bytes";
      auto& seqs = server_.handled[stream_];
      ResultMessage result;
      result.seq = server_.unknown_seq && server_.results_sent == 0 ? seq + 1000 : seq;
      if (auto first = seqs.find(seq); first != seqs.end()) {
        result.kind = first->second ? ResultMessage::Kind::kDuplicate : ResultMessage::Kind::kRejected;
        if (!first->second) result.reason = "negative score";
      } else {
        const auto* score = std::get_if<protocol::AddScore>(&request);
        const bool ok = score == nullptr || !server_.reject_values.count(score->value);
        seqs[seq] = ok;
        if (ok) server_.applied.push_back(seq);
        result.kind = ok ? ResultMessage::Kind::kAccepted : ResultMessage::Kind::kRejected;
        if (!ok) result.reason = "negative score";
      }
      if (server_.drop_before_every_result) {  // opened reaches the client, the result never
        dead_ = true;
        return;
      }
      for (int i = 0; i < (server_.extra_result ? 2 : 1); ++i) {
        protocol::encode_server_message(result, output_);
        ++server_.results_sent;
      }
    }
  }

  // Protocol 1: every complete Request is answered accepted (or rejected for a listed value).
  void consume_v1() {
    framer_.feed(input_.data(), input_.size());
    input_.clear();
    for (;;) {
      auto frame = framer_.next("request", "Request");
      ASSERT_TRUE(frame);
      if (!*frame) return;
      ++requests_;
      if (server_eof_) continue;  // closed: reads on, answers nothing
      if (server_.drop_after_results != 0 && server_.results_sent == server_.drop_after_results) {
        die();
        return;
      }
      output_ += from_hex("a0020500");
      ++server_.results_sent;
      if (server_.close_early && requests_ + 1 == expected_requests) server_eof_ = true;
      if (server_.extra_result) output_ += from_hex("a0020500");
    }
  }

 public:
  std::uint64_t expected_requests = 0;

 private:
  FakeServer& server_;
  std::uint32_t window_;
  std::string name_;
  std::string input_;
  std::string output_;
  protocol::ClientMessageReader reader_;
  protocol::BerFramer framer_;
  protocol::StreamId stream_{};
  std::uint64_t requests_ = 0;
  bool dead_ = false;
  bool client_eof_ = false;
  bool server_eof_ = false;
};

class FakeConnector : public Connector {
 public:
  FakeConnector(FakeServer& server, std::uint32_t window) : server_(server), window_(window) {}
  Result<std::unique_ptr<Channel>> connect(Trace&) override {
    ++attempts;
    if (refuse > 0) {
      --refuse;
      return make_error(Exit::kUnavailable, "connection refused");
    }
    return std::unique_ptr<Channel>(std::make_unique<FakeChannel>(server_, window_));
  }
  int attempts = 0;
  int refuse = 0;  // this many attempts fail before one succeeds

 private:
  FakeServer& server_;
  std::uint32_t window_;
};

// Lines 1..n: `score VALUE` with the line number as value (and -line for listed lines).
class Scores : public RequestSource {
 public:
  explicit Scores(std::uint64_t n, std::set<std::uint64_t> negative = {})
      : n_(n), negative_(std::move(negative)) {}
  Result<Next> next(Outgoing& out) override {
    if (line_ == n_) return Next::kEnd;
    ++line_;
    out.request = protocol::Request{protocol::AddScore{value(line_)}};
    out.line = line_;
    return Next::kReady;
  }
  // As a batch file does, in bulk, but only up to 3 at a time and for every other 4 lines: the
  // pump's two ways of taking requests alternate.
  std::size_t next_scores(PlainScore* out, std::size_t max) override {
    std::size_t n = 0;
    for (; n < std::min<std::size_t>(max, 3) && line_ < n_ && (line_ / 4) % 2 == 1; ++n) {
      ++line_;
      out[n] = {line_, value(line_)};
    }
    return n;
  }

 private:
  std::int64_t value(std::uint64_t line) const {
    const auto value = static_cast<std::int64_t>(line);
    return negative_.count(line) ? -value : value;
  }
  std::uint64_t n_;
  std::set<std::uint64_t> negative_;
  std::uint64_t line_ = 0;
};

// Lines 1..n of every size: mostly scores, a name of up to 3000 bytes every 7th line, and one of
// 60,000 (above the largest chunk, and the ring's first size) every 500th.
class Mixed : public RequestSource {
 public:
  explicit Mixed(std::uint64_t n) : n_(n) {}
  static protocol::Request request(std::uint64_t line) {
    if (line % 500 == 0) return protocol::SetUsername{std::string(60000 + line % 3, 'n')};
    if (line % 7 == 0) return protocol::SetUsername{std::string((line * 37) % 3000, 'a')};
    return protocol::AddScore{static_cast<std::int64_t>(line * 1000003)};
  }
  Result<Next> next(Outgoing& out) override {
    if (line_ == n_) return Next::kEnd;
    out.request = request(++line_);
    out.line = line_;
    return Next::kReady;
  }
  // Every run of scores in bulk, as a batch file hands them out.
  std::size_t next_scores(PlainScore* out, std::size_t max) override {
    std::size_t n = 0;
    for (; n < max && line_ < n_; ++n) {
      const protocol::Request next = request(line_ + 1);
      const auto* score = std::get_if<protocol::AddScore>(&next);
      if (score == nullptr) break;
      out[n] = {++line_, score->value};
    }
    return n;
  }

 private:
  std::uint64_t n_;
  std::uint64_t line_ = 0;
};

struct Record : Observer {
  void on_sent(std::uint64_t line) override { sent.push_back(line); }
  void on_outcome(std::uint64_t line, Outcome outcome, const std::string& reason) override {
    EXPECT_TRUE(outcomes.emplace(line, outcome).second) << "line " << line << " got two outcomes";
    order.push_back(line);
    if (!reason.empty()) reasons[line] = reason;
    if (stop != nullptr && line == stop_at)
      stop->stop(make_error(Exit::kInterrupted, "interrupted (SIGINT)"));
  }
  StopRequests* stop = nullptr;  // asked to stop when line `stop_at` has its outcome
  std::uint64_t stop_at = 0;
  std::vector<std::uint64_t> sent;
  std::map<std::uint64_t, Outcome> outcomes;
  std::vector<std::uint64_t> order;  // of the outcomes
  std::map<std::uint64_t, std::string> reasons;
};

struct RunResult {
  Status status;
  Record record;
  Tally tally;
  double seconds = 0;
};

RunResult run(FakeServer& server, RequestSource& source, std::uint32_t window = 1 << 20, int refuse = 0,
              std::chrono::milliseconds reconnect_for = std::chrono::milliseconds(2000),
              std::uint64_t expected = 0, std::uint64_t stop_at = 0) {
  FakeConnector connector(server, window);
  SessionOptions options;
  options.protocol = server.protocol;
  options.acks = server.protocol == 1 ? AckMode::kYes : AckMode::kAuto;
  options.stream = protocol::StreamId{1, 2, 3};
  options.timeout = std::chrono::milliseconds(200);
  options.reconnect_for = reconnect_for;
  Trace trace(false);
  RunResult r;
  StopRequests stop;
  if (stop_at != 0) {
    options.stop = &stop;
    r.record.stop = &stop;
    r.record.stop_at = stop_at;
  }
  auto first = connector.connect(trace);
  static_cast<FakeChannel&>(**first).expected_requests = expected;
  connector.refuse = refuse;
  const auto start = std::chrono::steady_clock::now();
  r.status = run_session(std::move(*first), connector, source, r.record, options, trace, r.tally);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

std::size_t count(const RunResult& r, Outcome outcome) {
  std::size_t n = 0;
  for (const auto& [line, o] : r.record.outcomes) n += o == outcome;
  return n;
}

TEST(SessionV2, OpenAndRequestsGoOutTogetherWithoutWaitingForOpened) {
  FakeServer server;
  Scores source(3, {2});
  server.reject_values = {-2};
  RunResult r = run(server, source);
  ASSERT_TRUE(r.status) << r.status.error().message;
  ASSERT_EQ(server.writes.size(), 1u);
  std::string expected;
  protocol::encode_open(protocol::StreamId{1, 2, 3}, expected);
  EXPECT_EQ(text::to_hex(server.writes[0].substr(0, expected.size())), text::to_hex(expected));
  EXPECT_EQ(server.applied, (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(r.record.outcomes.at(1), Outcome::kAccepted);
  EXPECT_EQ(r.record.outcomes.at(2), Outcome::kRejected);
  EXPECT_EQ(r.record.reasons.at(2), "negative score");
  EXPECT_EQ(r.record.sent, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(r.tally.accepted, 2u);
  EXPECT_EQ(r.tally.rejected, 1u);
}

TEST(SessionV2, WritesNeverExceedTheWindow) {
  FakeServer server;
  Scores source(50);
  RunResult r = run(server, source, /*window=*/40);
  ASSERT_TRUE(r.status) << r.status.error().message;
  EXPECT_GT(server.writes.size(), 20u);
  EXPECT_EQ(server.applied.size(), 50u);
}

// A protocol error at once (not after the --timeout), and only `accepted` lines claimed.
void expect_protocol_error(const RunResult& r, const char* fragment, std::size_t accepted = 0) {
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().code, Exit::kProtocol);
  EXPECT_NE(r.status.error().message.find(fragment), std::string::npos) << r.status.error().message;
  EXPECT_LT(r.seconds, 0.15);
  EXPECT_EQ(count(r, Outcome::kAccepted), accepted);
}

// More requests than may be unanswered at once, their results read a hundred at a time: the
// pump stops at the bound and goes on as results free room, in order, nothing twice.
TEST(SessionV2, ABatchBeyondTheBoundOnUnansweredRequestsGoesThrough) {
  FakeServer server;
  server.max_read = 100 * 15;  // a result { seq, accepted } of these seqs is 13 to 15 bytes
  Scores source(30000);
  RunResult r = run(server, source);
  ASSERT_TRUE(r.status) << r.status.error().message;
  EXPECT_EQ(r.tally.accepted, 30000u);
  ASSERT_EQ(server.applied.size(), 30000u);
  for (std::uint64_t line = 1; line <= 30000; ++line) ASSERT_EQ(server.applied[line - 1], line);
}

TEST(SessionV2, ExtraResultIsAProtocolErrorAtOnce) {
  FakeServer server;
  server.extra_result = true;
  server.deliver_before_drop = false;
  Scores source(1);
  RunResult r = run(server, source);
  // Protocol 2 results name their seq: line 1's result stays true; the second one is the error.
  expect_protocol_error(r, "result for seq 1 again (one result too many)", 1);
}

TEST(SessionV2, UnknownSeqIsAProtocolError) {
  FakeServer server;
  server.unknown_seq = true;
  Scores source(5);
  RunResult r = run(server, source);
  expect_protocol_error(r, "a seq this channel never sent");
  EXPECT_EQ(count(r, Outcome::kNotDelivered), 5u);
}

// The heart of exactly once: the connection dies after every possible number of bytes of the
// client's stream; the pump reconnects, resends what has no result, and the server applies
// every line exactly once; lines applied before the loss come back as duplicates.
TEST(SessionV2, ConnectionLostAtEveryByteLosesAndRepeatsNothing) {
  Scores probe(20, {7});
  FakeServer measure;
  measure.reject_values = {-7};
  ASSERT_TRUE(run(measure, probe).status);
  const std::uint64_t total = measure.client_bytes;
  ASSERT_GT(total, 400u);
  for (const bool deliver : {true, false}) {
    for (std::uint64_t at = 1; at < total; ++at) {
      FakeServer server;
      server.reject_values = {-7};
      server.drop_after_client_bytes = at;
      server.deliver_before_drop = deliver;
      Scores source(20, {7});
      RunResult r = run(server, source, /*window=*/64);
      ASSERT_TRUE(r.status) << "drop at byte " << at << ": " << r.status.error().message;
      std::vector<std::uint64_t> expected;
      for (std::uint64_t line = 1; line <= 20; ++line)
        if (line != 7) expected.push_back(line);
      EXPECT_EQ(server.applied, expected) << "drop at byte " << at;
      ASSERT_EQ(r.record.outcomes.size(), 20u) << "drop at byte " << at;
      EXPECT_EQ(r.record.outcomes.at(7), Outcome::kRejected) << "drop at byte " << at;
      EXPECT_EQ(count(r, Outcome::kAccepted) + count(r, Outcome::kDuplicate), 19u) << "drop at byte " << at;
      EXPECT_EQ(r.tally.reconnections, 1u) << "drop at byte " << at;
      EXPECT_EQ(r.tally.sent, 20u);
    }
  }
}

TEST(SessionV2, ReconnectsWithBackoffUntilANodeAnswers) {
  FakeServer server;
  server.drop_after_client_bytes = 100;
  Scores source(30);
  RunResult r = run(server, source, 64, /*refuse=*/3);
  ASSERT_TRUE(r.status) << r.status.error().message;
  EXPECT_EQ(server.applied.size(), 30u);
  EXPECT_EQ(server.channels, 2);
}

TEST(SessionV2, GivesUpReconnectingAfterTheWindowAndNamesWhatIsUnanswered) {
  FakeServer server;
  server.drop_after_client_bytes = 100;
  server.deliver_before_drop = false;
  Scores source(30);
  RunResult r = run(server, source, 64, /*refuse=*/1000, std::chrono::milliseconds(300));
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().code, Exit::kUnavailable);
  EXPECT_NE(r.status.error().message.find("no node answered within 0.3 s"), std::string::npos)
      << r.status.error().message;
  // Every request taken from the source has an outcome, and none is claimed.
  EXPECT_GE(r.record.outcomes.size(), r.tally.sent);
  EXPECT_GT(r.tally.sent, 3u);
  EXPECT_EQ(count(r, Outcome::kNotDelivered), r.record.outcomes.size());
  EXPECT_LT(r.seconds, 1.0);
}

// A server that accepts every reconnection and drops each one before a result: the bound runs
// from the first loss, not from each one, so the run ends within it (75), claims nothing, and
// backs off between attempts rather than reconnecting in a tight loop.
TEST(SessionV2, AServerThatNeverLetsAResultThroughEndsWithinTheWindow) {
  FakeServer server;
  server.drop_before_every_result = true;
  Scores source(3);
  RunResult r = run(server, source, 1 << 20, 0, std::chrono::milliseconds(600));
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().code, Exit::kTimeout);
  EXPECT_NE(r.status.error().message.find("no result within 0.6 s of the first loss"), std::string::npos)
      << r.status.error().message;
  EXPECT_LT(r.seconds, 1.0);
  EXPECT_GE(r.tally.reconnections, 2u);
  EXPECT_LE(r.tally.reconnections, 5u);                        // backoff 0, 0.1, 0.2 s, ...: not thousands
  EXPECT_EQ(server.applied, (std::vector<std::uint64_t>{1}));  // applied once, however often resent
  EXPECT_EQ(count(r, Outcome::kNotDelivered), 3u);
}

// Many losses, each followed by results: every recovery gets the whole window and starts its
// backoff afresh, so a long run with a loss now and then finishes however many there are.
TEST(SessionV2, ResultsBetweenLossesRenewTheWindow) {
  FakeServer server;
  server.drop_after_client_bytes = 100;
  server.drop_every = 100;
  Scores source(200);
  RunResult r = run(server, source, 64, 0, std::chrono::milliseconds(300));
  ASSERT_TRUE(r.status) << r.status.error().message;
  EXPECT_GT(r.tally.reconnections, 10u);  // more losses than one window's backoff would allow
  std::vector<std::uint64_t> expected(200);
  for (std::uint64_t line = 1; line <= 200; ++line) expected[line - 1] = line;
  EXPECT_EQ(server.applied, expected);
}

// The requests kept for a resend live in a ring that wraps around its end and grows: thousands
// of requests of every size, with losses every so many bytes (or one loss whose results are
// lost with it), resend every request with exactly its bytes and apply each once.
TEST(SessionV2, ResentRequestsKeepTheirBytesAcrossTheRingsWrapAndGrowth) {
  constexpr std::uint64_t kLines = 3000;
  for (const std::uint32_t window : {70000u, 1u << 20}) {
    for (const std::uint64_t every : {0u, 99991u, 300007u}) {
      for (const bool deliver : {true, false}) {
        FakeServer server;
        server.drop_after_client_bytes = every;
        server.drop_every = deliver ? every : 0;  // losing every result of every channel: no progress
        server.deliver_before_drop = deliver;
        Mixed source(kLines);
        RunResult r = run(server, source, window, 0, std::chrono::milliseconds(5000));
        const std::string what = "window " + std::to_string(window) + ", loss every " + std::to_string(every);
        ASSERT_TRUE(r.status) << what << ": " << r.status.error().message;
        EXPECT_EQ(r.record.outcomes.size(), kLines) << what;
        ASSERT_EQ(server.applied.size(), kLines) << what;
        for (std::uint64_t line = 1; line <= kLines; ++line) {
          ASSERT_EQ(server.applied[line - 1], line) << what;
          ASSERT_EQ(server.contents.at(line), describe(Mixed::request(line))) << what << ", line " << line;
        }
        EXPECT_EQ(r.tally.reconnections > 0, every != 0) << what;
      }
    }
  }
}

// Ctrl-C while requests are still unsent: the run stops (130), the rest is for --resume. The
// results in flight are reported, then the line read but not sent, in line order: the journal
// confirms the lines up to the first one without a result.
TEST(SessionV2, AStopBeforeTheLastRequestIsSentEndsTheRunInLineOrder) {
  FakeServer server;
  Scores source(5000);
  RunResult r = run(server, source, /*window=*/40, 0, std::chrono::milliseconds(2000), 0, /*stop_at=*/3);
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().code, Exit::kInterrupted);
  EXPECT_LT(server.applied.size(), 5000u);
  EXPECT_TRUE(std::is_sorted(r.record.order.begin(), r.record.order.end()));
  EXPECT_EQ(r.record.order.size(), r.tally.sent + 1);  // every line sent, and the next one
  EXPECT_EQ(r.record.outcomes.rbegin()->second, Outcome::kNotDelivered);
  EXPECT_EQ(r.tally.accepted, r.tally.sent);  // the fake answers at once: all in flight came back
}

// Ctrl-C after the last request was sent, its results arriving within the stop's wait: nothing
// was stopped, so the run is complete (no resume command that would find nothing to send).
TEST(SessionV2, AStopAfterTheLastRequestWhoseResultsArriveStopsNothing) {
  FakeServer server;
  Scores source(5);
  RunResult r = run(server, source, 1 << 20, 0, std::chrono::milliseconds(2000), 0, /*stop_at=*/1);
  ASSERT_TRUE(r.status) << r.status.error().message;
  EXPECT_EQ(r.tally.accepted, 5u);
}

TEST(SessionV1, AnswersBeforeAResetAreCounted) {
  FakeServer server;
  server.protocol = 1;
  server.drop_after_results = 7;
  Scores source(20);
  RunResult r = run(server, source);
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().code, Exit::kUnavailable);
  EXPECT_EQ(r.tally.accepted, 7u);
  for (std::uint64_t line = 1; line <= 7; ++line) EXPECT_EQ(r.record.outcomes.at(line), Outcome::kAccepted);
  for (std::uint64_t line = 8; line <= 20; ++line)
    EXPECT_EQ(r.record.outcomes.at(line), Outcome::kNotDelivered) << line;
  EXPECT_EQ(server.channels, 1);  // protocol 1: no automatic resend
}

// Responses that had arrived when the connection was lost count, however many reads they take:
// an accepted line left unread would be reported not delivered, and a resume would send it again.
TEST(SessionV1, EveryResponseReceivedBeforeALossIsCounted) {
  FakeServer server;
  server.protocol = 1;
  server.drop_after_client_bytes = 10 * 9;  // a score below 128 is 9 bytes: ten requests arrive whole
  server.max_read = 4;                      // one response per read
  Scores source(20);
  RunResult r = run(server, source);
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().code, Exit::kUnavailable);
  EXPECT_EQ(r.tally.accepted, 10u);
  for (std::uint64_t line = 1; line <= 10; ++line) EXPECT_EQ(r.record.outcomes.at(line), Outcome::kAccepted);
  for (std::uint64_t line = 11; line <= 20; ++line)
    EXPECT_EQ(r.record.outcomes.at(line), Outcome::kNotDelivered) << line;
}

TEST(SessionV1, ExtraResponseIsAProtocolErrorAtOnceAndNoLineIsClaimed) {
  FakeServer server;
  server.protocol = 1;
  server.extra_result = true;
  Scores source(10);
  RunResult r = run(server, source);
  expect_protocol_error(r, "more responses than requests");
  EXPECT_EQ(count(r, Outcome::kNotDelivered), 10u);
}

TEST(SessionV1, ExtraResponseAfterTheLastIsFoundBeforeTheClose) {
  FakeServer server;
  server.protocol = 1;
  server.extra_after_eof = true;
  Scores source(3);
  RunResult r = run(server, source);
  expect_protocol_error(r, "more responses than requests");
}

TEST(SessionV1, MissingResponseIsNotClaimed) {
  FakeServer server;
  server.protocol = 1;
  server.close_early = true;
  Scores source(5);
  RunResult r = run(server, source, 1 << 20, 0, std::chrono::milliseconds(2000), /*expected=*/5);
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().code, Exit::kUnavailable);
  EXPECT_EQ(count(r, Outcome::kAccepted), 4u);
  EXPECT_EQ(r.record.outcomes.at(5), Outcome::kNotDelivered);
}

// Given requests, in order, on lines 1, 2, ...
class Requests : public RequestSource {
 public:
  explicit Requests(std::vector<protocol::Request> requests) : requests_(std::move(requests)) {}
  Result<Next> next(Outgoing& out) override {
    if (line_ == requests_.size()) return Next::kEnd;
    out.request = requests_[line_++];
    out.line = line_;
    return Next::kReady;
  }

 private:
  std::vector<protocol::Request> requests_;
  std::size_t line_ = 0;
};

// A request larger than the most the pump coalesces into one message (a long name) goes out as
// a message of its own, between the packed ones, in both protocols.
TEST(Session, ARequestLargerThanAChunkIsWrittenAlone) {
  const std::string name(40000, 'x');
  for (const int protocol : {1, 2}) {
    FakeServer server;
    server.protocol = protocol;
    Requests source({protocol::AddScore{1}, protocol::SetUsername{name}, protocol::AddScore{2}});
    RunResult r = run(server, source);
    ASSERT_TRUE(r.status) << protocol << ": " << r.status.error().message;
    EXPECT_EQ(r.tally.accepted, 3u) << protocol;
    bool alone = false;
    for (const std::string& write : server.writes)
      alone |= write.size() > name.size() && write.size() < name.size() + 64;
    EXPECT_TRUE(alone) << protocol;
  }
}

TEST(Stream, IdsAreRandom) {
  auto a = new_stream_id();
  auto b = new_stream_id();
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

}  // namespace
