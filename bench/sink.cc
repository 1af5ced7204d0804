// game_bench_sink: the cheapest SSH server we can build for measuring the client alone.
//
//   game_bench_sink --host-key FILE [--mode ack|legacy] [--port N] [--connections N]
//                   [--ack-delay-ms MS] [--idle-timeout S] [--stats FILE] [--subsystem NAME]
//                   [--ciphers LIST] [--protocol 1|2]
//
// Listens on 127.0.0.1 only (--port 0, the default: the OS picks one), prints "READY <port>" on
// stdout, and serves one connection at a time with libssh's server API: any public key of any
// user is accepted (it only measures), one session channel with a subsystem (a channel whose
// subsystem request was refused may be followed by another: the client's protocol probe),
// subsystem "game" (or --subsystem NAME).
//
//   --protocol 1   (the default) a protocol 1 server: it refuses NAME-v2, as the original does.
//   --protocol 2   also offers NAME-v2 and speaks protocol 2 there (../shared/protocol2).
//   --mode ack     the client's bytes are a BER byte stream: each message's outer TLV (tag and
//                  length only) is framed and answered: in protocol 1 with a0 02 05 00 (Response
//                  accepted); in protocol 2 `open` with opened { lastSeq 0 } and every submit
//                  or account message with result { seq, accepted }, its seq copied byte for
//                  byte. The answers to one data message go out in one channel write. After the
//                  client's EOF and once everything is answered: exit-status 0, EOF, close.
//   --mode legacy  like a server that does not acknowledge: every data message must hold
//                  exactly one PDU (the old server decodes each message as one Request); a
//                  message with any other content counts as an error. Closes on the client's EOF.
//   --ack-delay-ms every answer is held back that long (ack mode): shows the client never waits
//                  for an answer before sending more.
//   --ciphers      offer only these ciphers (both directions), e.g. aes128-gcm@openssh.com: what
//                  the client's per-packet cost owes to the cipher.
//
// One JSON line per connection goes to --stats (default: stderr): the protocol spoken, messages,
// bytes, PDUs (requests: protocol 2's open is not one), errors, the sink's own CPU time for the
// connection and the negotiated ciphers.
// Exits after --connections connections (0: never), on SIGTERM/SIGINT, or when its parent dies.
#include <arpa/inet.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"

namespace {

using Clock = std::chrono::steady_clock;

enum class Mode { kAck, kLegacy };

struct Options {
  Mode mode = Mode::kAck;
  std::string host_key;
  std::string subsystem = "game";
  std::string stats;
  std::string ciphers;
  unsigned port = 0;
  long connections = 0;
  int ack_delay_ms = 0;
  int idle_timeout_s = 60;
  int protocol = 1;  // the highest protocol offered
};

constexpr std::string_view kAccepted("\xa0\x02\x05\x00", 4);
// ServerMessage opened { lastSeq 0 }: every stream is new to the sink.
constexpr std::string_view kOpened("\xa0\x07\x30\x05\xa0\x03\x02\x01\x00", 9);

// Outer BER TLV at p[0..n): total length, 0 if incomplete, -1 if not a TLV we accept
// (multi-byte tag, indefinite length, or a length of more than 4 bytes).
long tlv_size(const unsigned char* p, std::size_t n) {
  if (n < 2) return 0;
  if ((p[0] & 0x1f) == 0x1f) return -1;
  const unsigned first = p[1];
  std::size_t header = 2;
  std::size_t length = first;
  if (first & 0x80) {
    const unsigned count = first & 0x7f;
    if (count == 0 || count > 4) return -1;
    if (n < 2 + count) return 0;
    length = 0;
    for (unsigned i = 0; i < count; ++i) length = (length << 8) | p[2 + i];
    header += count;
  }
  const std::size_t total = header + length;
  return n < total ? 0 : static_cast<long>(total);
}

// The contents of the TLV at the front of `tlv`; empty unless a complete TLV is there.
std::string_view contents(std::string_view tlv) {
  const auto* p = reinterpret_cast<const unsigned char*>(tlv.data());
  const long size = tlv_size(p, tlv.size());
  if (size <= 0) return {};
  std::size_t header = 2;
  if ((p[1] & 0x80) != 0) header += p[1] & 0x7f;
  return tlv.substr(header, static_cast<std::size_t>(size) - header);
}

// result { seq, accepted } for a submit or account message ([1] or [2] { SEQUENCE { [0] { INTEGER
// } ... } }), the seq's INTEGER TLV copied as the client encoded it. False if it is not one.
bool append_result(std::string_view message, std::string& out) {
  if (message.empty() || (message[0] != '\xa1' && message[0] != '\xa2')) return false;
  const std::string_view sequence = contents(message);
  if (sequence.empty() || sequence[0] != '\x30') return false;
  const std::string_view fields = contents(sequence);  // [0] { seq } [1] { request }
  if (fields.empty() || fields[0] != '\xa0') return false;
  const std::string_view seq = contents(fields);  // 02 m <m bytes>
  if (seq.size() < 3 || seq.size() > 10 || seq[0] != '\x02') return false;
  const auto n = static_cast<char>(seq.size());
  const char head[] = {'\xa1', static_cast<char>(n + 10), '\x30', static_cast<char>(n + 8), '\xa0', n};
  out.append(head, sizeof head);
  out.append(seq);
  out.append("\xa1\x04\xa0\x02\x05\x00", 6);
  return true;
}

struct Conn {
  const Options* options = nullptr;
  ssh_session session = nullptr;
  ssh_channel channel = nullptr;
  std::string user;
  bool authenticated = false;
  bool subsystem_ok = false;
  int protocol = 1;                  // what the channel's subsystem speaks
  std::vector<ssh_channel> refused;  // channels whose subsystem was refused: freed at the end
  bool eof = false;
  bool peer_closed = false;
  bool sent_close = false;
  bool failed = false;
  // counters
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t pdus = 0;
  std::uint64_t opens = 0;
  std::uint64_t bad_messages = 0;
  std::uint64_t malformed = 0;
  std::uint64_t acks_sent_bytes = 0;
  std::uint64_t window_stalls = 0;
  Clock::time_point first_data{};
  Clock::time_point eof_at{};
  Clock::time_point last_activity{};
  // ack mode
  std::string carry;  // a partial PDU left over from the previous message
  std::string out;    // answers not yet written (window)
  std::size_t out_off = 0;
  struct Delayed {
    Clock::time_point due;
    std::string answers;
  };
  std::deque<Delayed> delayed;
  ssh_channel_callbacks_struct channel_cb{};
};

volatile sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

void queue_answers(Conn& c, std::string&& answers) {
  if (answers.empty()) return;
  if (c.options->ack_delay_ms > 0) {
    c.delayed.push_back(
        {Clock::now() + std::chrono::milliseconds(c.options->ack_delay_ms), std::move(answers)});
    return;
  }
  c.out += answers;
}

// The answer to one framed message of the client's stream, appended to `out`.
void answer(Conn& c, std::string_view message, std::string& out) {
  if (c.protocol == 1) {
    ++c.pdus;
    out.append(kAccepted);
  } else if (!message.empty() && message[0] == '\xa0') {
    ++c.opens;
    out.append(kOpened);
  } else if (append_result(message, out)) {
    ++c.pdus;
  } else {
    ++c.malformed;
  }
}

// Writes what the client's window allows; never blocks (the session is non-blocking).
void flush(Conn& c) {
  if (c.channel == nullptr || c.sent_close || c.failed) return;
  while (c.out_off < c.out.size()) {
    const std::uint32_t window = ssh_channel_window_size(c.channel);
    if (window == 0) {
      ++c.window_stalls;
      return;
    }
    const std::size_t left = c.out.size() - c.out_off;
    const std::uint32_t n = left < window ? static_cast<std::uint32_t>(left) : window;
    const int written = ssh_channel_write(c.channel, c.out.data() + c.out_off, n);
    if (written == SSH_ERROR) {
      c.failed = true;
      return;
    }
    if (written == 0) return;
    c.out_off += static_cast<std::size_t>(written);
    c.acks_sent_bytes += static_cast<std::uint64_t>(written);
  }
  c.out.clear();
  c.out_off = 0;
}

// ack mode: frame every complete TLV of the stream (plus any partial one from before) and answer
// each into `out`.
void frame_stream(Conn& c, const unsigned char* p, std::size_t n, std::string& out) {
  if (!c.carry.empty()) {
    // Complete the partial PDU first; rare (the client never splits a request), so simple.
    c.carry.append(reinterpret_cast<const char*>(p), n);
    const auto* q = reinterpret_cast<const unsigned char*>(c.carry.data());
    std::size_t at = 0;
    for (;;) {
      const long size = tlv_size(q + at, c.carry.size() - at);
      if (size < 0) {
        ++c.malformed;
        c.carry.clear();
        return;
      }
      if (size == 0) break;
      answer(c, std::string_view(c.carry).substr(at, static_cast<std::size_t>(size)), out);
      at += static_cast<std::size_t>(size);
    }
    c.carry.erase(0, at);
    return;
  }
  std::size_t at = 0;
  while (at < n) {
    const long size = tlv_size(p + at, n - at);
    if (size < 0) {
      ++c.malformed;
      return;
    }
    if (size == 0) {
      c.carry.assign(reinterpret_cast<const char*>(p + at), n - at);
      break;
    }
    answer(c, std::string_view(reinterpret_cast<const char*>(p + at), static_cast<std::size_t>(size)), out);
    at += static_cast<std::size_t>(size);
  }
}

// One call per SSH_MSG_CHANNEL_DATA: libssh hands over its channel buffer, which holds exactly
// this message because every call consumes everything.
int on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  if (is_stderr) return static_cast<int>(len);
  const auto now = Clock::now();
  if (c.messages == 0) c.first_data = now;
  c.last_activity = now;
  ++c.messages;
  c.bytes += len;
  const auto* p = static_cast<const unsigned char*>(data);
  if (c.options->mode == Mode::kLegacy) {
    const long size = tlv_size(p, len);
    if (size > 0 && static_cast<std::size_t>(size) == len) {
      ++c.pdus;
    } else {
      if (c.bad_messages < 5) {
        std::fprintf(stderr,
                     "game_bench_sink: legacy: data message %llu of %u bytes is not exactly one PDU\n",
                     static_cast<unsigned long long>(c.messages), len);
      }
      ++c.bad_messages;
    }
    return static_cast<int>(len);
  }
  std::string answers;
  frame_stream(c, p, len, answers);
  queue_answers(c, std::move(answers));
  flush(c);
  return static_cast<int>(len);
}

void on_eof(ssh_session, ssh_channel channel, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  if (channel != c.channel || !c.subsystem_ok) return;  // a refused probe's
  c.eof = true;
  c.eof_at = Clock::now();
  c.last_activity = c.eof_at;
}

void on_close(ssh_session, ssh_channel channel, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  if (channel != c.channel || !c.subsystem_ok) return;  // a refused probe's
  c.peer_closed = true;
  c.last_activity = Clock::now();
}

int on_subsystem(ssh_session, ssh_channel channel, const char* subsystem, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  if (channel != c.channel || c.subsystem_ok) return 1;
  const std::string& name = c.options->subsystem;
  if (name == subsystem) {
    c.protocol = 1;
  } else if (c.options->protocol == 2 && name + "-v2" == subsystem) {
    c.protocol = 2;
  } else {
    return 1;
  }
  c.subsystem_ok = true;
  return 0;
}

int on_auth_pubkey(ssh_session, const char* user, ssh_key, char state, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  // Any key of any user: a probe (NONE) is "acceptable", a valid signature logs in.
  if (state == SSH_PUBLICKEY_STATE_NONE) return SSH_AUTH_SUCCESS;
  if (state != SSH_PUBLICKEY_STATE_VALID) return SSH_AUTH_DENIED;
  c.user = user;
  c.authenticated = true;
  return SSH_AUTH_SUCCESS;
}

ssh_channel on_channel_open(ssh_session session, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  if (c.subsystem_ok) return nullptr;  // one working channel per connection
  if (c.channel != nullptr) c.refused.push_back(c.channel);
  c.channel = ssh_channel_new(session);
  if (c.channel == nullptr) return nullptr;
  c.channel_cb = {};
  c.channel_cb.userdata = &c;
  c.channel_cb.channel_data_function = on_data;
  c.channel_cb.channel_eof_function = on_eof;
  c.channel_cb.channel_close_function = on_close;
  c.channel_cb.channel_subsystem_request_function = on_subsystem;
  ssh_callbacks_init(&c.channel_cb);
  ssh_set_channel_callbacks(c.channel, &c.channel_cb);
  return c.channel;
}

double seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out += ch;
  }
  return out;
}

void report(const Conn& c, long index, const rusage& before, const rusage& after, double total_s,
            const char* outcome) {
  std::FILE* f = c.options->stats.empty() ? stderr : std::fopen(c.options->stats.c_str(), "ae");
  if (f == nullptr) f = stderr;
  const double data_s =
      (c.messages > 0 && c.eof) ? std::chrono::duration<double>(c.eof_at - c.first_data).count() : 0.0;
  std::fprintf(
      f,
      "{\"conn\": %ld, \"mode\": \"%s\", \"protocol\": %d, \"outcome\": \"%s\", \"user\": \"%s\", "
      "\"messages\": %llu, \"bytes\": %llu, \"pdus\": %llu, \"opens\": %llu, \"bad_messages\": %llu, "
      "\"malformed\": %llu, "
      "\"ack_bytes\": %llu, \"window_stalls\": %llu, \"data_s\": %.6f, \"conn_s\": %.6f, "
      "\"sink_user_s\": %.6f, \"sink_sys_s\": %.6f, \"cipher_in\": \"%s\", \"cipher_out\": \"%s\"}\n",
      index, c.options->mode == Mode::kAck ? "ack" : "legacy", c.protocol, outcome,
      json_escape(c.user).c_str(), static_cast<unsigned long long>(c.messages),
      static_cast<unsigned long long>(c.bytes), static_cast<unsigned long long>(c.pdus),
      static_cast<unsigned long long>(c.opens), static_cast<unsigned long long>(c.bad_messages),
      static_cast<unsigned long long>(c.malformed), static_cast<unsigned long long>(c.acks_sent_bytes),
      static_cast<unsigned long long>(c.window_stalls), data_s, total_s,
      seconds(after.ru_utime) - seconds(before.ru_utime), seconds(after.ru_stime) - seconds(before.ru_stime),
      c.session ? ssh_get_cipher_in(c.session) : "", c.session ? ssh_get_cipher_out(c.session) : "");
  if (f != stderr)
    std::fclose(f);
  else
    std::fflush(f);
}

// Serves one accepted session to its end. Returns a short outcome word for the stats.
const char* serve(Conn& c) {
  ssh_server_callbacks_struct server_cb{};
  server_cb.userdata = &c;
  server_cb.auth_pubkey_function = on_auth_pubkey;
  server_cb.channel_open_request_session_function = on_channel_open;
  ssh_callbacks_init(&server_cb);
  ssh_set_server_callbacks(c.session, &server_cb);
  ssh_set_auth_methods(c.session, SSH_AUTH_METHOD_PUBLICKEY);

  const int fd = ssh_get_fd(c.session);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (ssh_handle_key_exchange(c.session) != SSH_OK) {
    std::fprintf(stderr, "game_bench_sink: key exchange failed: %s\n", ssh_get_error(c.session));
    return "kex-failed";
  }
  ssh_set_blocking(c.session, 0);
  ssh_event event = ssh_event_new();
  ssh_event_add_session(event, c.session);

  const char* outcome = "done";
  const auto idle = std::chrono::seconds(c.options->idle_timeout_s);
  c.last_activity = Clock::now();
  Clock::time_point close_deadline{};
  for (;;) {
    int timeout_ms = 100;
    if (!c.delayed.empty()) {
      const auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(c.delayed.front().due - Clock::now());
      timeout_ms =
          static_cast<int>(std::max<long long>(0, std::min<long long>(timeout_ms, wait.count() + 1)));
    }
    const int rc = ssh_event_dopoll(event, timeout_ms);
    if (g_stop) {
      outcome = "signal";
      break;
    }
    if (rc == SSH_ERROR) {
      // The client disconnected (normal after its channel close) or the connection broke.
      if (!c.sent_close && !c.peer_closed) outcome = "disconnected";
      break;
    }
    const auto now = Clock::now();
    while (!c.delayed.empty() && c.delayed.front().due <= now) {
      c.out += c.delayed.front().answers;
      c.delayed.pop_front();
    }
    flush(c);
    if (c.failed) {
      outcome = "write-failed";
      break;
    }
    const bool answered = c.out.empty() && c.delayed.empty();
    if (c.channel != nullptr && !c.sent_close &&
        (c.peer_closed || (c.eof && (answered || c.options->mode == Mode::kLegacy)))) {
      ssh_channel_request_send_exit_status(c.channel, 0);
      ssh_channel_send_eof(c.channel);
      ssh_channel_close(c.channel);
      c.sent_close = true;
      // A slow client (under valgrind, say) may still be reading answers that are queued here:
      // disconnecting after a fixed 2 s dropped them. Wait as long as for an idle client.
      close_deadline = now + idle;
    }
    if (c.sent_close && (c.peer_closed || now >= close_deadline)) {
      // Give the client a moment to send its close and disconnect, then stop either way.
      if (now >= close_deadline) break;
      if (c.peer_closed) {
        ssh_event_dopoll(event, 50);
        break;
      }
    }
    if ((ssh_get_status(c.session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0) break;
    if (now - c.last_activity > idle && !(c.sent_close)) {
      outcome = "idle-timeout";
      break;
    }
  }
  ssh_event_remove_session(event, c.session);
  ssh_event_free(event);
  return outcome;
}

[[noreturn]] void usage() {
  std::fprintf(
      stderr,
      "usage: game_bench_sink --host-key FILE [--mode ack|legacy] [--port N] [--connections N]\n"
      "                       [--ack-delay-ms MS] [--idle-timeout S] [--stats FILE] [--subsystem NAME]\n"
      "                       [--ciphers LIST] [--protocol 1|2]\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) usage();
    const std::string value = argv[++i];
    if (arg == "--mode") {
      if (value == "ack")
        o.mode = Mode::kAck;
      else if (value == "legacy")
        o.mode = Mode::kLegacy;
      else
        usage();
    } else if (arg == "--host-key") {
      o.host_key = value;
    } else if (arg == "--port") {
      o.port = static_cast<unsigned>(bench::number_arg(arg, value, 0, 65535));
    } else if (arg == "--connections") {
      o.connections = bench::number_arg(arg, value, 0, 1L << 40);
    } else if (arg == "--ack-delay-ms") {
      o.ack_delay_ms = static_cast<int>(bench::number_arg(arg, value, 0, 3'600'000));
    } else if (arg == "--idle-timeout") {
      o.idle_timeout_s = static_cast<int>(bench::number_arg(arg, value, 1, 86'400));
    } else if (arg == "--stats") {
      o.stats = value;
    } else if (arg == "--subsystem") {
      o.subsystem = value;
    } else if (arg == "--ciphers") {
      o.ciphers = value;
    } else if (arg == "--protocol") {
      o.protocol = static_cast<int>(bench::number_arg(arg, value, 1, 2));
    } else {
      usage();
    }
  }
  if (o.host_key.empty()) usage();
  if (o.protocol == 2 && o.mode == Mode::kLegacy) {
    std::fprintf(stderr, "game_bench_sink: --mode legacy is a protocol 1 server (no --protocol 2)\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the benchmark script
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: a blocking accept() returns with EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ssh_init();
  ssh_bind bind = ssh_bind_new();
  const int no = 0;
  const unsigned port = options.port;
  if (ssh_bind_options_set(bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
      ssh_bind_options_set(bind, SSH_BIND_OPTIONS_BINDADDR, "127.0.0.1") != SSH_OK ||
      ssh_bind_options_set(bind, SSH_BIND_OPTIONS_BINDPORT, &port) != SSH_OK ||
      ssh_bind_options_set(bind, SSH_BIND_OPTIONS_HOSTKEY, options.host_key.c_str()) != SSH_OK) {
    std::fprintf(stderr, "game_bench_sink: %s\n", ssh_get_error(bind));
    return 1;
  }
  if (!options.ciphers.empty() &&
      (ssh_bind_options_set(bind, SSH_BIND_OPTIONS_CIPHERS_C_S, options.ciphers.c_str()) != SSH_OK ||
       ssh_bind_options_set(bind, SSH_BIND_OPTIONS_CIPHERS_S_C, options.ciphers.c_str()) != SSH_OK)) {
    std::fprintf(stderr, "game_bench_sink: --ciphers: %s\n", ssh_get_error(bind));
    return 1;
  }
  if (ssh_bind_listen(bind) != SSH_OK) {
    std::fprintf(stderr, "game_bench_sink: cannot listen: %s\n", ssh_get_error(bind));
    return 1;
  }
  sockaddr_in addr{};
  socklen_t addr_len = sizeof addr;
  if (getsockname(ssh_bind_get_fd(bind), reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) {
    std::perror("game_bench_sink: getsockname");
    return 1;
  }
  std::printf("READY %u\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  for (long index = 1; !g_stop && (options.connections == 0 || index <= options.connections); ++index) {
    Conn c;
    c.options = &options;
    c.session = ssh_new();
    if (ssh_bind_accept(bind, c.session) != SSH_OK) {
      ssh_free(c.session);
      if (g_stop) break;
      std::fprintf(stderr, "game_bench_sink: accept failed: %s\n", ssh_get_error(bind));
      --index;
      continue;
    }
    rusage before{};
    getrusage(RUSAGE_SELF, &before);
    const auto start = Clock::now();
    const char* outcome = serve(c);
    rusage after{};
    getrusage(RUSAGE_SELF, &after);
    report(c, index, before, after, std::chrono::duration<double>(Clock::now() - start).count(), outcome);
    if (c.channel != nullptr) ssh_channel_free(c.channel);
    for (ssh_channel refused : c.refused) ssh_channel_free(refused);
    ssh_disconnect(c.session);
    ssh_free(c.session);
  }
  ssh_bind_free(bind);
  ssh_finalize();
  return 0;
}
