// game_bench_proxy: a TCP relay on loopback that adds a fixed delay each way, so that the round
// trips of one invocation show up in its wall time (bench/run's latency section).
//
//   game_bench_proxy --to PORT [--delay-ms MS] [--max-seconds S] [--stats FILE]
//
// Listens on 127.0.0.1 (a port the OS picks), prints "READY <port>" on stdout, and relays every
// connection to 127.0.0.1:PORT. Every byte leaves the proxy MS milliseconds (default 25) after it
// arrived, in both directions, so one round trip costs 2 × MS. The TCP handshake is not
// delayed (the client's connect() to the proxy returns at once): on a real network of that
// round-trip time, add one round trip for it.
//
// Only loopback: it listens on 127.0.0.1 and connects to 127.0.0.1. It exits after --max-seconds
// (default 600), on SIGTERM/SIGINT, or when its parent dies. One JSON line per connection goes to
// --stats (default: stderr): bytes each way and the connection's duration.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <list>
#include <string>
#include <vector>

#include "args.h"

namespace {

using Clock = std::chrono::steady_clock;

// What one direction may hold before the proxy stops reading from its source: the peers' TCP
// windows then push back, as a real path's buffers would.
constexpr std::size_t kMaxQueued = 8u << 20;

struct Options {
  unsigned to_port = 0;
  int delay_ms = 25;
  int max_seconds = 600;
  std::string stats;
};

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// An fd owned once.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(-1); }
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Bytes that arrived at one time, due to leave `delay` later.
struct Chunk {
  Clock::time_point due;
  std::string bytes;
};

// One direction of a connection: read from `from`, written to `to` once due.
struct Direction {
  std::deque<Chunk> queue;
  std::size_t queued = 0;
  std::size_t offset = 0;  // into queue.front().bytes
  bool read_eof = false;   // `from` has ended: shut `to` down once the queue is empty
  bool shut = false;
  unsigned long long bytes = 0;
};

struct Relay {
  Fd client;
  Fd server;
  Clock::time_point accepted;
  Direction up;    // client → server
  Direction down;  // server → client
  bool failed = false;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: game_bench_proxy --to PORT [--delay-ms MS] [--max-seconds S] [--stats FILE]\n");
  std::exit(64);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) usage();
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--to") {
      o.to_port = static_cast<unsigned>(bench::number_arg(flag, value, 1, 65535));
    } else if (flag == "--delay-ms") {
      o.delay_ms = static_cast<int>(bench::number_arg(flag, value, 0, 10'000));
    } else if (flag == "--max-seconds") {
      o.max_seconds = static_cast<int>(bench::number_arg(flag, value, 1, 86'400));
    } else if (flag == "--stats") {
      o.stats = value;
    } else {
      usage();
    }
  }
  if (o.to_port == 0) usage();
  return o;
}

sockaddr_in loopback(unsigned port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

void set_nodelay_nonblocking(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

Fd listen_loopback(unsigned* port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(0);
  if (fd.get() < 0 || bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      listen(fd.get(), 16) != 0) {
    std::perror("game_bench_proxy: listen on 127.0.0.1");
    std::exit(1);
  }
  socklen_t len = sizeof a;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  return fd;
}

// A blocking connect to the server on loopback: it answers at once or refuses.
Fd connect_server(unsigned port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(port);
  if (fd.get() < 0 || connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  set_nodelay_nonblocking(fd.get());
  return fd;
}

// Reads what `from` has into the direction's queue, due `delay` from now.
void pull(int from, Direction& d, std::chrono::milliseconds delay, bool& failed) {
  char buf[65536];
  const ssize_t n = ::read(from, buf, sizeof buf);
  if (n > 0) {
    d.queue.push_back({Clock::now() + delay, std::string(buf, static_cast<std::size_t>(n))});
    d.queued += static_cast<std::size_t>(n);
  } else if (n == 0) {
    d.read_eof = true;
  } else if (errno != EAGAIN && errno != EINTR) {
    failed = true;
  }
}

// Writes whatever is due to `to`; shuts `to` down after the source's end has been relayed.
void push(int to, Direction& d, Clock::time_point now, bool& failed) {
  while (!d.queue.empty() && d.queue.front().due <= now) {
    Chunk& c = d.queue.front();
    const ssize_t n = ::send(to, c.bytes.data() + d.offset, c.bytes.size() - d.offset, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) failed = true;
      return;
    }
    d.offset += static_cast<std::size_t>(n);
    d.bytes += static_cast<unsigned long long>(n);
    if (d.offset < c.bytes.size()) return;
    d.queued -= c.bytes.size();
    d.offset = 0;
    d.queue.pop_front();
  }
  if (d.queue.empty() && d.read_eof && !d.shut) {
    ::shutdown(to, SHUT_WR);
    d.shut = true;
  }
}

bool finished(const Relay& r) { return r.failed || (r.up.shut && r.down.shut); }

void report(const Options& o, const Relay& r) {
  FILE* out = o.stats.empty() ? stderr : std::fopen(o.stats.c_str(), "a");
  if (out == nullptr) return;
  const double seconds = std::chrono::duration<double>(Clock::now() - r.accepted).count();
  std::fprintf(out, "{\"up_bytes\":%llu,\"down_bytes\":%llu,\"seconds\":%.6f,\"failed\":%s}\n", r.up.bytes,
               r.down.bytes, seconds, r.failed ? "true" : "false");
  if (out != stderr) std::fclose(out);
}

// The poll timeout until the next chunk is due (or the end), in ms, rounded up.
int next_timeout(const std::list<Relay>& relays, Clock::time_point now, Clock::time_point end) {
  Clock::time_point next = end;
  for (const Relay& r : relays) {
    for (const Direction* d : {&r.up, &r.down}) {
      if (!d->queue.empty()) next = std::min(next, d->queue.front().due);
    }
  }
  if (next <= now) return 0;
  return static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(next - now).count() / 1000 +
                          1);
}

void serve(const Options& o, int listener) {
  const auto delay = std::chrono::milliseconds(o.delay_ms);
  const Clock::time_point end = Clock::now() + std::chrono::seconds(o.max_seconds);
  std::list<Relay> relays;
  while (!g_stop && Clock::now() < end) {
    std::vector<pollfd> fds{{listener, POLLIN, 0}};
    for (Relay& r : relays) {
      const bool up_room = r.up.queued < kMaxQueued && !r.up.read_eof;
      const bool down_room = r.down.queued < kMaxQueued && !r.down.read_eof;
      const bool up_due = !r.up.queue.empty() && r.up.queue.front().due <= Clock::now();
      const bool down_due = !r.down.queue.empty() && r.down.queue.front().due <= Clock::now();
      fds.push_back(
          {r.client.get(), static_cast<short>((up_room ? POLLIN : 0) | (down_due ? POLLOUT : 0)), 0});
      fds.push_back(
          {r.server.get(), static_cast<short>((down_room ? POLLIN : 0) | (up_due ? POLLOUT : 0)), 0});
    }
    const int timeout = next_timeout(relays, Clock::now(), end);
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;

    if (fds[0].revents & POLLIN) {
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        set_nodelay_nonblocking(fd);
        Relay& r = relays.emplace_back();
        r.client = Fd(fd);
        r.server = connect_server(o.to_port);
        r.accepted = Clock::now();
        if (r.server.get() < 0) r.failed = true;
      }
    }
    std::size_t i = 1;
    for (Relay& r : relays) {
      const short client_events = fds[i].revents;
      const short server_events = fds[i + 1].revents;
      i += 2;
      if (client_events & (POLLIN | POLLHUP | POLLERR)) pull(r.client.get(), r.up, delay, r.failed);
      if (server_events & (POLLIN | POLLHUP | POLLERR)) pull(r.server.get(), r.down, delay, r.failed);
    }
    const Clock::time_point now = Clock::now();
    for (auto it = relays.begin(); it != relays.end();) {
      Relay& r = *it;
      if (!r.failed) {
        push(r.server.get(), r.up, now, r.failed);
        push(r.client.get(), r.down, now, r.failed);
      }
      if (finished(r)) {
        report(o, r);
        it = relays.erase(it);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  unsigned port = 0;
  const Fd listener = listen_loopback(&port);
  std::printf("READY %u\n", port);
  std::fflush(stdout);
  serve(options, listener.get());
  return 0;
}
