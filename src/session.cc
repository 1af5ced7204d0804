#include "session.h"

#include <poll.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ber_direct.h"
#include "protocol.h"
#include "text.h"

namespace game {
namespace {

using Clock = std::chrono::steady_clock;

// Largest data message when coalescing: below every implementation's maximum packet (RFC 4253
// 6.1 guarantees 32768 bytes of payload).
constexpr std::size_t kMaxChunk = 32 * 1024 - 64;
// Between two reads of the server's responses, at most this many writes.
constexpr int kWritesPerRound = 256;
// Protocol 2 keeps every request until its result arrives, to resend it after a loss; beyond
// this many, the pump waits for results before sending more (bounded memory). It also bounds
// a batch's working set and peak memory: at 65536 (1.5 MB of requests) the pump ran out of the
// CPU's caches and took 2.8 times the CPU per request (docs/PERFORMANCE.md). The price: at
// 50 ms RTT a protocol 2 batch goes at most 8192 / 50 ms = 160,000 requests/s.
constexpr std::size_t kMaxUnacknowledged = 8192;
// Once there, at least this many are let go before the pump writes again (about a full
// message of scores).
constexpr std::size_t kMinRefill = 1024;
// seq is an INTEGER below 2^63 (docs/protocol.md).
constexpr std::uint64_t kMaxSeq = (std::uint64_t{1} << 63) - 1;
// After a loss, the reads of what had already arrived: far more than any socket's buffers hold
// (a read takes up to 64 KB), a bound only in case a channel kept handing out data.
constexpr int kMaxDrainReads = 4096;
// Reconnection backoff (protocol 2): the first retry at once, then doubling up to the cap.
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

std::string count_text(std::uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::string seconds_text(std::chrono::milliseconds duration) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", std::chrono::duration<double>(duration).count());
  return text;
}

// A lost connection or a server that stopped answering: worth a reconnection in protocol 2.
// Anything else (a protocol error, a refused key, a changed host key) is not.
bool is_loss(const Error& error) { return error.code == Exit::kUnavailable || error.code == Exit::kTimeout; }

// Protocol 1 results held until the channel ends: a response carries no request identity, so
// an extra one anywhere shifts every answer after it. Only a channel that ended without one
// proves the count, and so what each line's answer was. Consecutive lines with the same
// outcome are one run, so that a million accepted lines take a few bytes.
class HeldOutcomes {
 public:
  // Lines first .. first + count - 1, all with this outcome.
  void add(std::uint64_t first, std::uint64_t count, Outcome outcome, std::string reason = {}) {
    if (!runs_.empty() && runs_.back().outcome == outcome && reason.empty() && runs_.back().reason.empty() &&
        runs_.back().first + runs_.back().count == first) {
      runs_.back().count += count;
    } else {
      runs_.push_back({first, count, outcome, std::move(reason)});
    }
  }
  // Reports every held line: with its answer if `trusted`, else as not acknowledged.
  void release(bool trusted, Observer& observer, Tally& tally) {
    for (const Run& run : runs_) {
      if (trusted && run.outcome == Outcome::kAccepted) {
        tally.accepted += run.count;
        observer.on_accepted(run.first, run.count);
        continue;
      }
      for (std::uint64_t line = run.first; line < run.first + run.count; ++line) {
        const Outcome outcome = trusted ? run.outcome : Outcome::kNotDelivered;
        ++(outcome == Outcome::kAccepted   ? tally.accepted
           : outcome == Outcome::kRejected ? tally.rejected
                                           : tally.not_delivered);
        observer.on_outcome(line, outcome, trusted ? run.reason : std::string());
      }
    }
    runs_.clear();
  }

 private:
  struct Run {
    std::uint64_t first;
    std::uint64_t count;
    Outcome outcome;
    std::string reason;
  };
  std::deque<Run> runs_;
};

// Protocol 2 requests kept until their results arrive, in order, with their encoded submit or
// account messages end to end in one ring of bytes (a string per request cost an allocation
// each), which is also what is written: the requests of a chunk are one piece of it. The first
// written() of them were written on the current channel; the rest wait to be resent. The next
// request is encoded in place behind them ("staged") and joins them once it is written.
//
// Both rings (the messages' bytes and their seq and size) have a power-of-two size and grow
// only to the most ever unanswered at once (and the room to stage one more): nothing is moved
// while they do not grow (a buffer whose answered front was dropped now and then moved about a
// byte per byte sent and, with the string's doubling, grew to three times what was unanswered;
// docs/PERFORMANCE.md).
class Unanswered {
 public:
  // Where the next request may be encoded in place: `room` contiguous bytes behind the last
  // request, or nullptr where the ring's end is nearer (once per turn of it): then stage() a
  // copy. Nothing may be staged yet.
  char* staging_area(std::size_t room) {
    reserve(room);
    const std::size_t at = position(end_);
    return at + room <= ring_size_ ? ring_.get() + at : nullptr;
  }
  // The next request's `size` bytes are at staging_area().
  void staged(std::size_t size) { staged_ = size; }
  // The next request's bytes, copied behind the last request.
  void stage(std::string_view bytes) {
    reserve(bytes.size());
    put(end_, bytes);
    staged_ = bytes.size();
  }
  std::size_t staged_size() const { return staged_; }
  // The staged request was written just now, behind every other.
  void push_staged(std::uint64_t seq) {
    if (count_ == entries_.size()) grow_entries();
    entry(count_) = {seq, staged_};
    ++count_;
    end_ += staged_;
    staged_ = 0;
    ++written_;
    written_end_ = end_;
  }
  // The result of the first request arrived (it was written).
  void pop() {
    head_ += entry(0).size;
    first_ = (first_ + 1) & (entries_.size() - 1);
    --count_;
    --written_;
  }
  // A new channel: nothing is written on it yet.
  void rewind() {
    written_ = 0;
    written_end_ = head_;
  }
  // The first request not written on this channel (there must be one), and marking it written.
  std::size_t unwritten_size() const { return entry(written_).size; }
  void mark_written() {
    written_end_ += entry(written_).size;
    ++written_;
  }
  // The last `size` bytes marked written: the requests of the chunk being written. In place,
  // unless they wrap around the end of the ring (once per turn of it): then copied to `spare`.
  std::string_view last_written(std::size_t size, std::string& spare) const {
    return bytes_at(written_end_ - size, size, spare);
  }
  std::uint64_t front_seq() const { return entry(0).seq; }
  std::uint64_t seq(std::size_t i) const { return entry(i).seq; }
  std::size_t size() const { return count_; }
  std::size_t written() const { return written_; }
  bool empty() const { return count_ == 0; }
  bool all_written() const { return written_ == count_; }
  void clear() { *this = Unanswered(); }

 private:
  struct Entry {
    std::uint64_t seq;
    std::size_t size;
  };
  // The i-th request from the front.
  Entry& entry(std::size_t i) { return entries_[(first_ + i) & (entries_.size() - 1)]; }
  const Entry& entry(std::size_t i) const { return entries_[(first_ + i) & (entries_.size() - 1)]; }
  void grow_entries() {
    std::vector<Entry> larger(entries_.empty() ? 64 : 2 * entries_.size());
    for (std::size_t i = 0; i < count_; ++i) larger[i] = entry(i);
    entries_ = std::move(larger);
    first_ = 0;
  }
  // Byte offsets count every byte ever pushed; a ring position is the offset modulo its size.
  std::size_t position(std::uint64_t offset) const {
    return static_cast<std::size_t>(offset & (ring_size_ - 1));
  }
  // The `size` bytes from `offset`: in place, unless they wrap around the end of the ring (once
  // per turn of it), then copied to `spare`.
  std::string_view bytes_at(std::uint64_t offset, std::size_t size, std::string& spare) const {
    if (size == 0) return {};
    const std::size_t at = position(offset);
    if (at + size <= ring_size_) return std::string_view(ring_.get() + at, size);
    spare.assign(ring_.get() + at, ring_size_ - at);
    spare.append(ring_.get(), size - spare.size());
    return spare;
  }
  void put(std::uint64_t offset, std::string_view bytes) {
    if (bytes.empty()) return;  // the first growth has no live bytes: memcpy from a null data() is undefined
    const std::size_t at = position(offset);
    const std::size_t first = std::min(bytes.size(), ring_size_ - at);
    std::memcpy(ring_.get() + at, bytes.data(), first);
    if (first < bytes.size()) std::memcpy(ring_.get(), bytes.data() + first, bytes.size() - first);
  }
  // Room for `size` more bytes behind the last request (growing moves only requests: nothing is
  // staged while it runs).
  void reserve(std::size_t size) {
    if (end_ - head_ + size > ring_size_) grow_ring(end_ - head_ + size);
  }
  // Not zeroed: a page of the ring costs memory only once a request is written to it.
  void grow_ring(std::size_t needed) {
    std::string spare;
    const std::string_view live = bytes_at(head_, end_ - head_, spare);
    std::size_t size = ring_size_ == 0 ? 4096 : ring_size_;
    while (size < needed) size *= 2;
    auto old = std::exchange(ring_, std::unique_ptr<char[]>(new char[size]));  // `live` may point into it
    ring_size_ = size;
    put(head_, live);
  }
  std::vector<Entry> entries_;
  std::size_t first_ = 0;  // the front's index in entries_
  std::size_t count_ = 0;
  std::unique_ptr<char[]> ring_;
  std::size_t ring_size_ = 0;  // a power of two (or 0)
  std::uint64_t head_ = 0;     // bytes before it belong to answered requests
  std::uint64_t end_ = 0;      // where the next request's bytes go
  std::size_t written_ = 0;
  std::uint64_t written_end_ = 0;  // where the first unwritten request's bytes begin
  std::size_t staged_ = 0;         // bytes of the next request, from end_
};

class Pump {
 public:
  Pump(std::unique_ptr<Channel> channel, Connector& connector, RequestSource& source, Observer& observer,
       const SessionOptions& options, Trace& trace, Tally& tally)
      : channel_(std::move(channel)),
        connector_(connector),
        source_(source),
        observer_(observer),
        options_(options),
        trace_(trace),
        tally_(tally),
        v2_(options.protocol == 2),
        acknowledging_(v2_ || options.acks == AckMode::kYes) {}

  Status run() {
    for (;;) {
      Status status = stream();
      if (status) status = finish();
      // A stop that came after the last request was sent, and whose wait brought every result,
      // stopped nothing: the run is complete, with nothing to resume.
      if (status && stop_requests() > 0 && cut_short_) status = stopped();
      if (status) {
        held_.release(true, observer_, tally_);
        return status;
      }
      if (is_loss(status.error())) {
        // What the server sent before the loss is still readable, maybe more than one read
        // takes: count all of it before anything else (in protocol 1 a result left unread
        // would make an accepted line "not delivered", and a resume send it again).
        for (int reads = 0; reads < kMaxDrainReads; ++reads) {
          auto drained = read_messages();
          if (!drained) {
            if (drained.error().code == Exit::kProtocol) status = std::move(drained).error();
            break;
          }
          if (inbox_.empty()) break;
        }
      }
      if (v2_ && is_loss(status.error()) && everything_answered()) {
        trace_.step(status.error().message + " after the last result: nothing is lost");
        return {};
      }
      if (v2_ && is_loss(status.error())) status = reconnect(std::move(status).error());
      if (!status) {
        fail(status.error());
        return status;
      }
    }
  }

 private:
  Status stream() {
    last_progress_ = Clock::now();
    for (;;) {
      auto open = read_messages();
      if (!open) return std::move(open).error();
      if (!*open) return closed_early();
      GAME_TRY(check_stop());
      if (stopping()) return {};
      auto wrote = write_ready();
      if (!wrote) return std::move(wrote).error();
      if (source_done_ && !have_next_ && unanswered_.all_written()) return {};
      if (*wrote) continue;
      GAME_TRY(channel_->wait({stop_fd(), waiting_for_source_ ? source_.wait_fd() : -1}, deadline()));
      if (Clock::now() >= deadline()) return timed_out();
    }
  }

  // After the last request: EOF, then the remaining results and the server's close (protocol
  // 2, and protocol 1 servers that acknowledge), then our close.
  Status finish() {
    if (!eof_sent_) {
      GAME_TRY(channel_->send_eof());
      eof_sent_ = true;
      trace_.step("sent " + count_text(tally_.sent, "request") + " and EOF");
    }
    const auto grace_end = Clock::now() + options_.ack_grace;
    last_progress_ = Clock::now();
    for (;;) {
      auto open = read_messages();
      if (!open) return std::move(open).error();
      const bool answered = pending() == 0;
      if (answered && !acknowledging_) break;  // nothing sent: nothing to wait for
      GAME_TRY(check_stop());
      if (!*open) {
        if (answered) break;
        if (acknowledging_) return closed_early();
        trace_.step("server closed the channel without acknowledging: delivered, not acknowledged");
        resolve_in_flight(Outcome::kDelivered);
        break;
      }
      if (!acknowledging_ && (options_.acks == AckMode::kNo || Clock::now() >= grace_end)) {
        // A server that neither acknowledges nor closes: close it ourselves. Its CLOSE answers
        // ours only after everything we sent before it, so it is the proof of delivery.
        GAME_TRY(close_handshake());
        trace_.step(std::string(options_.acks == AckMode::kNo
                                    ? "acks = \"no\""
                                    : "no acknowledgement within the grace period") +
                    ": delivered, not acknowledged");
        resolve_in_flight(Outcome::kDelivered);
        return {};
      }
      auto until = std::min(deadline(), stop_deadline_);
      if (!acknowledging_ && options_.acks == AckMode::kAuto) until = std::min(until, grace_end);
      GAME_TRY(channel_->wait({stop_fd()}, until));
      if (Clock::now() >= deadline()) {
        if (!answered) return timed_out();
        trace_.step("every result is in but the server kept the channel open (--timeout)");
        break;
      }
    }
    trace_.step("all requests resolved");
    return close_handshake();
  }

  // RFC 4254 5.3: our CLOSE, then the server's, bounded by --timeout. Disconnecting earlier could
  // make the server drop what it has received but not yet processed.
  Status close_handshake() {
    std::string ignored;
    GAME_TRY(channel_->read_available(ignored));  // a refused or unanswered subsystem is no close
    if (channel_->remote_closed()) return {};
    GAME_TRY(channel_->close());
    // A server still working through what we sent returns window as it goes: that is progress.
    auto until = Clock::now() + options_.timeout;
    std::uint32_t window = channel_->window();
    while (!channel_->remote_closed()) {
      ignored.clear();  // a server that keeps sending after our close must not grow it
      GAME_TRY(channel_->read_available(ignored));
      if (channel_->remote_closed()) break;
      GAME_TRY(check_stop());
      if (channel_->window() != window) {
        window = channel_->window();
        until = Clock::now() + options_.timeout;
      }
      if (Clock::now() >= until) {
        return make_error(
            Exit::kTimeout,
            channel_->peer() + ": server did not answer the channel close (--timeout)" + pending_text());
      }
      GAME_TRY(channel_->wait({stop_fd()}, std::min(until, stop_deadline_)));
    }
    GAME_TRY(channel_->read_available(ignored));  // the close may have come instead of the answer
    trace_.step("channel closed");
    return {};
  }

  // Handles every message available now, including those that arrived before a failure. False
  // once the server sent EOF or closed.
  Result<bool> read_messages() {
    inbox_.clear();
    auto open = channel_->read_available(inbox_);
    if (!inbox_.empty()) {
      last_progress_ = Clock::now();
      GAME_TRY(v2_ ? handle_v2(inbox_) : handle_v1(inbox_));
    }
    return open;
  }

  Status handle_v1(const std::string& bytes) {
    reader_v1_.feed(bytes.data(), bytes.size());
    for (;;) {
      // Accepted ones in a row (nearly every response) are taken by count. More of them than
      // requests in flight go the general way, which words the error.
      if (const std::uint64_t accepted = reader_v1_.take_accepted(in_flight_.size()); accepted > 0) {
        for (std::uint64_t left = accepted; left > 0;) {
          const LineQueue::Run run = in_flight_.pop_run(left);
          held_.add(run.first, run.count, Outcome::kAccepted);
          left -= run.count;
        }
        responses_ += accepted;
        answered_v1();
        continue;
      }
      auto response = reader_v1_.next();
      if (!response) return std::move(response).error();
      if (!*response) return {};
      ++responses_;
      if (in_flight_.empty()) {
        return make_error(Exit::kProtocol, channel_->peer() + ": server sent more responses than requests (" +
                                               std::to_string(responses_) + " responses for " +
                                               count_text(tally_.sent, "request") + ")");
      }
      const std::uint64_t line = in_flight_.pop();
      held_.add(line, 1, (*response)->accepted ? Outcome::kAccepted : Outcome::kRejected,
                std::move((*response)->reason));
      answered_v1();
    }
  }

  void answered_v1() {
    if (!acknowledging_) {
      acknowledging_ = true;
      trace_.step("server acknowledges requests: coalescing writes");
    }
    // --follow waiting for input with every request answered: the count is exact now, so the
    // answers are reported at once rather than at the end of a session that may last hours.
    if (in_flight_.empty() && waiting_for_source_) held_.release(true, observer_, tally_);
  }

  Status handle_v2(const std::string& bytes) {
    reader_v2_.feed(bytes.data(), bytes.size());
    Status status = read_v2();
    report_accepted();
    return status;
  }

  Status read_v2() {
    for (;;) {
      take_accepted_results();
      auto message = reader_v2_.next();
      if (!message) return std::move(message).error();
      if (!*message) return {};
      if (const auto* opened = std::get_if<protocol::Opened>(&**message)) {
        if (opened_) return protocol_error("server sent opened twice");
        opened_ = true;
        if (unanswered_.empty()) recovering_since_ = Clock::time_point::max();  // the backoff stays
        trace_.step("stream open on " + channel_->peer() + ", lastSeq " + std::to_string(opened->last_seq));
        continue;
      }
      GAME_TRY(handle_result(std::get<protocol::ResultMessage>(**message)));
    }
  }

  // The results answering the requests due, in order, accepted: nearly every result. Each is
  // matched against the seq expected, without decoding, and counted into a run of accepted lines
  // that report_accepted() tells the observer at once. Anything else is left to read_v2(), which
  // also words the errors.
  void take_accepted_results() {
    if (!opened_) return;
    std::size_t taken = 0;
    while (taken < unanswered_.written() && reader_v2_.take_accepted(unanswered_.seq(taken))) ++taken;
    if (taken == 0) return;
    recovered();
    for (; taken > 0; --taken) {
      const std::uint64_t seq = unanswered_.front_seq();
      unanswered_.pop();
      if (accepted_count_ == 0 || accepted_first_ + accepted_count_ != seq) {
        report_accepted();
        accepted_first_ = seq;
      }
      ++accepted_count_;
      last_answered_ = seq;
    }
  }

  void report_accepted() {
    if (accepted_count_ == 0) return;
    tally_.accepted += accepted_count_;
    observer_.on_accepted(accepted_first_, accepted_count_);
    accepted_count_ = 0;
  }

  Status handle_result(const protocol::ResultMessage& result) {
    using Kind = protocol::ResultMessage::Kind;
    report_accepted();  // the lines before this one first
    const std::string seq = std::to_string(result.seq);
    if (!opened_) return protocol_error("server sent a result (seq " + seq + ") before opened");
    if (unanswered_.written() == 0 || result.seq <= last_answered_) {
      return protocol_error("server sent a result for seq " + seq +
                            (result.seq <= last_answered_ ? " again" : " with no request waiting") +
                            " (one result too many)");
    }
    if (result.seq != unanswered_.front_seq()) {
      bool sent = false;
      for (std::size_t i = 0; i < unanswered_.written(); ++i) sent |= unanswered_.seq(i) == result.seq;
      return protocol_error("server sent a result for seq " + seq +
                            (sent ? " out of order" : ", a seq this channel never sent") + "; seq " +
                            std::to_string(unanswered_.front_seq()) + " was due");
    }
    const std::uint64_t line = unanswered_.front_seq();
    recovered();
    last_answered_ = line;
    unanswered_.pop();
    switch (result.kind) {
      case Kind::kKeys:
        observer_.on_keys(line, result.keys);
        [[fallthrough]];
      case Kind::kAccepted:
        ++tally_.accepted;
        observer_.on_outcome(line, Outcome::kAccepted, {});
        break;
      case Kind::kDuplicate:
        ++tally_.duplicate;
        observer_.on_outcome(line, Outcome::kDuplicate, {});
        break;
      case Kind::kRejected:
        ++tally_.rejected;
        observer_.on_outcome(line, Outcome::kRejected, result.reason);
        break;
    }
    return {};
  }

  Error protocol_error(const std::string& what) const {
    return make_error(Exit::kProtocol, channel_->peer() + ": " + what);
  }

  // Writes whatever the window allows. True if anything was written or taken from the source.
  Result<bool> write_ready() {
    bool progress = false;
    for (int round = 0; round < kWritesPerRound; ++round) {
      auto fetched = fetch();
      if (!fetched) return std::move(fetched).error();
      progress |= *fetched;
      auto wrote = v2_ ? write_v2() : write_v1();
      if (!wrote) return std::move(wrote).error();
      if (!*wrote) break;
      progress = true;
      last_progress_ = Clock::now();
    }
    return progress;
  }

  Result<bool> write_v1() {
    if (!have_next_) return false;
    const std::size_t window = channel_->window();
    // A request never straddles two data messages: the original server decodes each
    // message as exactly one Request, so wait for window rather than let libssh split it.
    if (next_bytes_.size() > window) return false;
    if (!acknowledging_) {
      GAME_TRY(channel_->write(next_bytes_));
      take_next();
      return true;
    }
    // The server reads a byte stream: pack as many requests as fit into one message (the first
    // may be larger than kMaxChunk, a long name, never than window), each encoded straight
    // behind the others; the one that does not fit is moved back to next_bytes_.
    const std::size_t limit = std::min<std::size_t>(window, kMaxChunk);
    chunk_.swap(next_bytes_);
    take_next();
    for (;;) {
      auto scores = take_scores(limit > chunk_.size() ? limit - chunk_.size() : 0);
      if (!scores) return std::move(scores).error();
      if (*scores > 0) continue;
      const std::size_t end = chunk_.size();
      auto more = fetch(&chunk_);
      if (!more) return std::move(more).error();
      if (!*more) break;
      if (chunk_.size() > limit) {
        next_bytes_.assign(chunk_, end);
        chunk_.resize(end);
        break;
      }
      take_next();
    }
    GAME_TRY(channel_->write(chunk_));
    return true;
  }

  // Protocol 2: open first on every channel, then what an earlier channel left unanswered, then
  // new requests; as one byte stream, coalesced. The requests are written straight from where
  // they are kept for a resend; only a channel's first chunk, behind its open, is copied.
  Result<bool> write_v2() {
    // At the bound, results free room a few hundred requests at a time (one read of libssh's):
    // writing each few as they come took twice the system calls and wake-ups of the server.
    if (unanswered_.all_written() && pending() > 0 && kMaxUnacknowledged - unanswered_.size() < kMinRefill)
      return false;
    const std::size_t window = channel_->window();
    const std::size_t limit = std::min<std::size_t>(window, kMaxChunk);
    chunk_.clear();
    if (!open_written_) protocol::encode_open(options_.stream, chunk_);
    if (chunk_.size() > window) return false;
    std::size_t size = chunk_.size();
    // The first message of a chunk may be larger than kMaxChunk (a long name), never than window.
    const auto fits = [&](std::size_t more) { return size == 0 ? more <= window : size + more <= limit; };
    while (!unanswered_.all_written() && fits(unanswered_.unwritten_size())) {
      size += unanswered_.unwritten_size();
      unanswered_.mark_written();
      ++resent_;
    }
    while (unanswered_.all_written() && unanswered_.size() < kMaxUnacknowledged) {
      if (have_next_) {
        if (!fits(unanswered_.staged_size())) break;
        size += unanswered_.staged_size();
        take_next();
      }
      auto scores = take_scores(limit > size ? limit - size : 0);
      if (!scores) return std::move(scores).error();
      size += *scores;
      if (*scores > 0) continue;
      auto more = fetch();
      if (!more) return std::move(more).error();
      if (!*more) break;
    }
    if (size == 0) return false;
    if (open_written_) {
      GAME_TRY(channel_->write(unanswered_.last_written(size, chunk_)));
    } else {
      std::string spare;
      chunk_ += unanswered_.last_written(size - chunk_.size(), spare);
      GAME_TRY(channel_->write(chunk_));
      open_written_ = true;
    }
    if (resent_ > 0 && unanswered_.all_written()) {  // one line per reconnection, not per chunk
      trace_.step("resent " + count_text(resent_, "unanswered request") + " to " + channel_->peer());
      resent_ = 0;
    }
    return true;
  }

  // Pulls the next request from the source and encodes it, if none is pending: in protocol 2
  // staged in the ring, in protocol 1 into next_bytes_ or behind what `into` holds. True if one
  // was.
  Result<bool> fetch(std::string* into = nullptr) {
    if (have_next_ || source_done_) return false;
    auto next = source_.next(next_);
    if (!next) return std::move(next).error();
    waiting_for_source_ = *next == RequestSource::Next::kWait;
    source_done_ = *next == RequestSource::Next::kEnd;
    if (*next != RequestSource::Next::kReady) return false;
    if (v2_) {
      GAME_TRY(stage_next());
    } else {
      if (into == nullptr) {
        next_bytes_.clear();
        into = &next_bytes_;
      }
      GAME_TRY(encode_next(*into));
    }
    have_next_ = true;
    return true;
  }

  // The plain scores the source has ready, taken one by one as they are encoded (protocol 2:
  // staged in the ring; protocol 1: behind the others in chunk_), as many as `room` bytes and
  // the bound on unanswered requests allow. The bytes taken.
  Result<std::size_t> take_scores(std::size_t room) {
    if (have_next_ || source_done_) return 0;
    PlainScore scores[256];
    std::size_t most = std::min(
        std::size(scores), room / (v2_ ? ber_direct::kSubmitAddScoreRoom : ber_direct::kMaxAddScoreSize));
    if (v2_) most = std::min(most, kMaxUnacknowledged - unanswered_.size());
    const std::size_t n = most > 0 ? source_.next_scores(scores, most) : 0;
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (v2_) {
        if (!next_seq(scores[i].line)) return seq_error(scores[i].line);
        bytes += stage_score(scores[i].line, scores[i].value);
      } else {
        const std::size_t before = chunk_.size();
        ber_direct::append_add_score(scores[i].value, chunk_);
        bytes += chunk_.size() - before;
      }
      take(scores[i].line);
    }
    return bytes;
  }

  Status stage_next() {
    if (!next_seq(next_.line)) return seq_error(next_.line);
    const auto* request = std::get_if<protocol::Request>(&next_.request);
    if (const auto* score = request != nullptr ? std::get_if<protocol::AddScore>(request) : nullptr) {
      stage_score(next_.line, score->value);
    } else {
      stage_encoded(next_.line, next_.request);
    }
    return {};
  }

  // Whether `line` may be the seq of the next request taken (it then becomes the last one).
  bool next_seq(std::uint64_t line) {
    if (line <= last_line_ || line > kMaxSeq) return false;
    last_line_ = line;
    return true;
  }

  Error seq_error(std::uint64_t line) const {
    return make_error(Exit::kDataErr, "request numbers must increase along a submission (line " +
                                          std::to_string(line) + " after " + std::to_string(last_line_) +
                                          ")");
  }

  // A score (nearly every request) is encoded straight into the ring. Its size. Inlined into
  // take_scores()' loop: a call set up a stack frame for it, 18 instructions per request.
  [[gnu::always_inline]] std::size_t stage_score(std::uint64_t seq, std::int64_t value) {
    char* const at = unanswered_.staging_area(ber_direct::kSubmitAddScoreRoom);
    if (at == nullptr) return stage_encoded(seq, protocol::Request{protocol::AddScore{value}});
    const auto size = static_cast<std::size_t>(
        ber_direct::put_submit_add_score(at, static_cast<std::int64_t>(seq), value) - at);
    unanswered_.staged(size);
    return size;
  }

  // Any other request, and a score where the ring's end is nearer than the room it needs (once
  // per turn of the ring), is encoded apart and copied in. Its size. Never inlined: the string
  // and the variant would give stage_score() a stack frame to set up.
  [[gnu::noinline]] std::size_t stage_encoded(std::uint64_t seq, const protocol::Submission& submission) {
    next_bytes_.clear();
    protocol::encode_submission(seq, submission, next_bytes_);
    unanswered_.stage(next_bytes_);
    return next_bytes_.size();
  }

  Status encode_next(std::string& out) {
    const auto* request = std::get_if<protocol::Request>(&next_.request);
    if (request == nullptr) {
      return make_error(Exit::kUnavailable, channel_->peer() +
                                                " speaks protocol 1, which has no account requests (they "
                                                "need a server that offers protocol 2)");
    }
    protocol::encode(*request, out);
    return {};
  }

  void take_next() {
    take(next_.line);
    have_next_ = false;
  }

  // The request of `line`, encoded and staged (protocol 2) or behind the others (protocol 1),
  // is now sent.
  void take(std::uint64_t line) {
    if (v2_) {
      unanswered_.push_staged(line);
    } else {
      in_flight_.push(line);
    }
    ++tally_.sent;
    observer_.on_sent(line);
  }

  // Requests written on this channel and not yet answered.
  std::uint64_t pending() const { return v2_ ? unanswered_.written() : in_flight_.size(); }

  bool everything_answered() const { return unanswered_.empty() && source_done_ && !have_next_; }

  // When the wait for the server must end: only while we need something from it.
  Clock::time_point deadline() const {
    const bool need_server =
        (have_next_ && !waiting_for_source_) || (acknowledging_ && pending() > 0) || source_done_;
    return need_server ? last_progress_ + options_.timeout : Clock::time_point::max();
  }

  // Protocol 2 after a loss: new channels (each tries every address of the server in turn), with
  // backoff. The bound is per recovery, not per loss: it runs from the first loss after the last
  // result, so a server that accepts every reconnection and drops each before a result cannot
  // keep the client forever, while a long batch that loses a node now and then (results flowing
  // in between) always gets the whole window again. The backoff, too, grows across the
  // reconnections of one recovery, so such a server is not hammered in a tight loop.
  Status reconnect(Error cause) {
    if (!recovering()) {
      recovering_since_ = Clock::now();
      reconnections_ = 0;
    }
    trace_.step(cause.message + "; reconnecting");
    std::string refused;  // why the last attempt failed; empty while the last one connected
    for (;;) {
      const auto now = Clock::now();
      if (now >= give_up_at()) return gave_up(std::move(cause), refused);
      // The last attempt is made at the end of the window, not skipped for a backoff beyond it.
      const auto delay = std::min(backoff_, std::chrono::ceil<std::chrono::milliseconds>(give_up_at() - now));
      if (delay.count() > 0) {
        pollfd stop{stop_fd(), POLLIN, 0};
        ::poll(&stop, 1, static_cast<int>(delay.count()));
      }
      if (stop_requests() > 0) return stopped();
      backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
      auto channel = connector_.connect(trace_);
      if (!channel) {
        if (!is_loss(channel.error())) return std::move(channel).error();
        refused = channel.error().message;
        trace_.step("reconnection attempt failed: " + refused);
        continue;
      }
      channel_ = std::move(*channel);
      ++tally_.reconnections;
      ++reconnections_;
      trace_.step("reconnected to " + channel_->peer() + " (" + count_text(reconnections_, "reconnection") +
                  " since the last result)");
      reader_v2_ = protocol::ServerMessageReader();
      opened_ = open_written_ = eof_sent_ = false;
      unanswered_.rewind();
      resent_ = 0;
      last_answered_ = 0;
      return {};
    }
  }

  // The end of a recovery: no node answered (69), or nodes answered but none let a result
  // through (75) within reconnect_for of the first loss.
  Error gave_up(Error cause, const std::string& refused) const {
    const std::string window = seconds_text(options_.reconnect_for);
    if (!refused.empty() || reconnections_ == 0) {
      cause.code = Exit::kUnavailable;
      cause.message += "; no node answered within " + window + " of reconnecting" +
                       (refused.empty() ? "" : " (last: " + refused + ")");
    } else {
      cause.code = Exit::kTimeout;
      cause.message += "; no result within " + window + " of the first loss, across " +
                       count_text(reconnections_, "reconnection") + " (each lost before a result)";
    }
    return cause;
  }

  // A result ends a recovery and its backoff. A stream reopened with nothing to resend ends the
  // recovery too (an idle --follow is not timed out) but keeps the backoff: a server that opens
  // streams and drops them is retried ever more slowly, not in a tight loop.
  void recovered() {
    recovering_since_ = Clock::time_point::max();
    backoff_ = std::chrono::milliseconds(0);
  }
  bool recovering() const { return recovering_since_ != Clock::time_point::max(); }
  Clock::time_point give_up_at() const {
    return recovering() ? recovering_since_ + options_.reconnect_for : Clock::time_point::max();
  }

  // Stop requests so far (signals, closed output); 0 without a StopRequests.
  int stop_requests() { return options_.stop != nullptr ? options_.stop->poll() : 0; }
  int stop_fd() const { return options_.stop != nullptr ? options_.stop->fd() : -1; }

  // The first stop request: nothing more is sent; the request read but not written is kept so
  // that the report names the first line the server has not seen, after the results in flight
  // (outcomes are reported in line order: the journal's confirmed line relies on it). finish()
  // then waits for those results until stop_deadline_.
  Status begin_stop() {
    trace_.step(options_.stop->reason()->message + ": sending stopped");
    stop_deadline_ = Clock::now() + std::min(options_.stop_wait, options_.timeout);
    auto fetched = fetch();
    if (!fetched) return std::move(fetched).error();
    cut_short_ = !source_done_ || have_next_;
    source_done_ = true;
    return {};
  }

  // At every step: the first stop request begins the stop; a second one, or the end of the short
  // wait, ends the run now.
  Status check_stop() {
    const int requests = stop_requests();
    if (requests == 0) return {};
    if (!stopping()) GAME_TRY(begin_stop());
    if (requests >= 2 || Clock::now() >= stop_deadline_) return stopped();
    return {};
  }

  bool stopping() const { return stop_deadline_ != Clock::time_point::max(); }

  Error stopped() const {
    Error error = *options_.stop->reason();
    error.message += pending_text();
    return error;
  }

  Error timed_out() const {
    const bool unread =
        have_next_ && (v2_ ? unanswered_.staged_size() : next_bytes_.size()) > channel_->window();
    const std::string what =
        unread ? "server stopped reading (no SSH window left)" : "server sent no acknowledgement";
    return make_error(Exit::kTimeout, channel_->peer() + ": " + what + " for " +
                                          seconds_text(options_.timeout) + " (--timeout)" + pending_text());
  }

  Error closed_early() const {
    return make_error(Exit::kUnavailable,
                      channel_->peer() + ": server closed the channel early" + pending_text());
  }

  std::string pending_text() const {
    const std::uint64_t n = v2_ ? unanswered_.size() : in_flight_.size();
    if (n == 0) return "";
    return "; " + count_text(n, "request") + " not acknowledged";
  }

  void resolve_in_flight(Outcome outcome) {
    while (!in_flight_.empty()) {
      const std::uint64_t line = in_flight_.pop();
      ++(outcome == Outcome::kDelivered ? tally_.delivered : tally_.not_delivered);
      observer_.on_outcome(line, outcome, {});
    }
  }

  // Every request without an answer gets one: not acknowledged. After a protocol error the held
  // protocol 1 answers are not trusted either.
  void fail(const Error& error) {
    held_.release(error.code != Exit::kProtocol, observer_, tally_);
    resolve_in_flight(Outcome::kNotDelivered);
    for (std::size_t i = 0; i < unanswered_.size(); ++i) {
      ++tally_.not_delivered;
      observer_.on_outcome(unanswered_.seq(i), Outcome::kNotDelivered, {});
    }
    unanswered_.clear();
    if (have_next_) {  // never written: named as not delivered, but not counted as sent
      have_next_ = false;
      observer_.on_outcome(next_.line, Outcome::kNotDelivered, {});
    }
  }

  std::unique_ptr<Channel> channel_;
  Connector& connector_;
  RequestSource& source_;
  Observer& observer_;
  const SessionOptions& options_;
  Trace& trace_;
  Tally& tally_;
  const bool v2_;

  // Protocol 1.
  bool acknowledging_;
  protocol::ResponseReader reader_v1_;
  LineQueue in_flight_;
  HeldOutcomes held_;
  std::uint64_t responses_ = 0;

  // Protocol 2.
  protocol::ServerMessageReader reader_v2_;
  Unanswered unanswered_;
  std::uint64_t accepted_first_ = 0;  // a run of accepted lines not yet reported
  std::uint64_t accepted_count_ = 0;
  bool opened_ = false;
  bool open_written_ = false;
  std::uint64_t last_answered_ = 0;  // on this channel
  std::uint64_t last_line_ = 0;

  bool eof_sent_ = false;
  std::string inbox_;
  std::string chunk_;
  Outgoing next_;
  std::string next_bytes_;
  bool have_next_ = false;
  bool source_done_ = false;
  bool waiting_for_source_ = false;
  Clock::time_point last_progress_;
  Clock::time_point stop_deadline_ = Clock::time_point::max();
  bool cut_short_ = false;  // the stop left requests of the source unsent

  // Protocol 2 reconnection: since when no result has arrived (max: not recovering).
  Clock::time_point recovering_since_ = Clock::time_point::max();
  std::chrono::milliseconds backoff_{0};
  std::size_t resent_ = 0;           // unanswered requests written again since the last reconnection
  std::uint64_t reconnections_ = 0;  // in this recovery
};

}  // namespace

void Observer::on_accepted(std::uint64_t first, std::uint64_t count) {
  static const std::string kNoReason;
  for (std::uint64_t line = first; line < first + count; ++line)
    on_outcome(line, Outcome::kAccepted, kNoReason);
}

Result<protocol::StreamId> new_stream_id() {
  protocol::StreamId id{};
  std::size_t got = 0;
  while (got < id.size()) {
    const ssize_t n = ::getrandom(id.data() + got, id.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Exit::kIoErr, std::string("getrandom failed: ") + std::strerror(errno));
    got += static_cast<std::size_t>(n);
  }
  return id;
}

void LineQueue::push(std::uint64_t line) {
  if (!runs_.empty() && runs_.back().first + runs_.back().count == line) {
    ++runs_.back().count;
  } else {
    runs_.push_back({line, 1});
  }
  ++size_;
}

LineQueue::Run LineQueue::pop_run(std::uint64_t max) {
  Run& front = runs_.front();
  const Run taken{front.first, std::min(front.count, max)};
  front.first += taken.count;
  front.count -= taken.count;
  if (front.count == 0) runs_.pop_front();
  size_ -= taken.count;
  return taken;
}

std::uint64_t LineQueue::pop() {
  Run& run = runs_.front();
  const std::uint64_t line = run.first;
  ++run.first;
  if (--run.count == 0) runs_.pop_front();
  --size_;
  return line;
}

Status run_session(std::unique_ptr<Channel> channel, Connector& reconnect, RequestSource& source,
                   Observer& observer, const SessionOptions& options, Trace& trace, Tally& tally) {
  return Pump(std::move(channel), reconnect, source, observer, options, trace, tally).run();
}

}  // namespace game
