#include "transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <optional>
#include <utility>
#include <vector>

namespace game {
namespace {

using Clock = std::chrono::steady_clock;

bool is_numeric_address(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// One asynchronous look-up (getaddrinfo_a). Its memory is glibc's resolver thread's to use
// until the look-up ends: when a look-up cannot be cancelled at the deadline it is left to that
// thread (a few hundred bytes, once per run), never freed under it.
struct Lookup {
  std::string host;
  addrinfo hints{};
  gaicb request{};
};

std::vector<std::string> numeric_addresses(const addrinfo* list) {
  std::vector<std::string> out;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN];
    if (::getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) != 0)
      continue;
    if (std::find(out.begin(), out.end(), text) == out.end()) out.emplace_back(text);
  }
  return out;
}

// The addresses of `host`, numeric, looked up within `timeout` (libssh's own look-up has no
// bound: an unanswering resolver held `--timeout 2` for 10 s).
Result<std::vector<std::string>> resolve(const Endpoint& endpoint, std::chrono::milliseconds timeout) {
  if (is_numeric_address(endpoint.host)) return std::vector<std::string>{endpoint.host};
  auto* lookup = new Lookup{endpoint.host, {}, {}};
  lookup->hints.ai_socktype = SOCK_STREAM;
  lookup->hints.ai_flags = AI_ADDRCONFIG;
  lookup->request.ar_name = lookup->host.c_str();
  lookup->request.ar_request = &lookup->hints;
  gaicb* list[] = {&lookup->request};
  if (::getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr) != 0) {
    delete lookup;
    return make_error(Exit::kUnavailable, "cannot resolve host name " + endpoint.host);
  }
  const auto deadline = Clock::now() + timeout;
  int rc = EAI_INPROGRESS;
  while ((rc = ::gai_error(&lookup->request)) == EAI_INPROGRESS) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    const timespec wait{static_cast<time_t>(left.count() / 1000000000),
                        static_cast<long>(left.count() % 1000000000)};
    const gaicb* const pending[] = {&lookup->request};
    ::gai_suspend(pending, 1, &wait);
  }
  if (rc == EAI_INPROGRESS) {
    if (::gai_cancel(&lookup->request) == EAI_CANCELED) {
      delete lookup;
    } else {
      // Still the resolver thread's: kept reachable (for leak checkers too), never freed, not
      // even at exit (the thread may still write to it).
      static auto* abandoned = new std::vector<Lookup*>;
      abandoned->push_back(lookup);
    }
    return make_error(Exit::kTimeout, "resolving host name " + endpoint.host + " took longer than " +
                                          std::to_string(timeout.count()) + " ms (--timeout)");
  }
  std::unique_ptr<Lookup> owned(lookup);
  if (rc != 0) {
    return make_error(Exit::kUnavailable,
                      "cannot resolve host name " + endpoint.host + ": " + ::gai_strerror(rc));
  }
  std::vector<std::string> addresses = numeric_addresses(lookup->request.ar_result);
  ::freeaddrinfo(lookup->request.ar_result);
  if (addresses.empty())
    return make_error(Exit::kUnavailable, "host name " + endpoint.host + " has no address");
  return addresses;
}

template <class T>
bool set_option(ssh_session s, ssh_options_e option, const T& value) {
  return ssh_options_set(s, option, &value) == SSH_OK;
}
bool set_option(ssh_session s, ssh_options_e option, const char* value) {
  return ssh_options_set(s, option, value) == SSH_OK;
}

// libssh's own list and order, except that with AES and carry-less multiply instructions the
// AES-GCM ciphers come before ChaCha20-Poly1305 (as Go's SSH and TLS stacks choose): both are
// AEADs, and in hardware AES-GCM takes a batch's bytes through at a fraction of ChaCha20-Poly1305's
// cost, which re-keys Poly1305 for every packet (docs/PERFORMANCE.md). The server picks the
// first of these it supports, so a server without AES-GCM still gets ChaCha20-Poly1305.
const char* cipher_preference() {
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul")) {
    return "aes256-gcm@openssh.com,aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,"
           "aes256-ctr,aes192-ctr,aes128-ctr";
  }
#endif
  return "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
         "aes256-ctr,aes192-ctr,aes128-ctr";
}

// Every option that would otherwise default to something read from the user's OpenSSH setup or
// the password database is set explicitly (README: "The client reads neither ~/.ssh/config nor
// ~/.ssh/known_hosts").
bool configure(ssh_session s, const std::string& address, const Endpoint& endpoint, const std::string& user,
               std::chrono::milliseconds timeout) {
  const int no = 0;
  const int yes = 1;
  const unsigned int port = endpoint.port;
  const long seconds = static_cast<long>(timeout.count() / 1000);
  const long usec = static_cast<long>((timeout.count() % 1000) * 1000);
  return set_option(s, SSH_OPTIONS_PROCESS_CONFIG, no) && set_option(s, SSH_OPTIONS_HOST, address.c_str()) &&
         set_option(s, SSH_OPTIONS_PORT, port) && set_option(s, SSH_OPTIONS_USER, user.c_str()) &&
         set_option(s, SSH_OPTIONS_SSH_DIR, "/nonexistent") &&
         set_option(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") &&
         set_option(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") &&
         set_option(s, SSH_OPTIONS_TIMEOUT, seconds) && set_option(s, SSH_OPTIONS_TIMEOUT_USEC, usec) &&
         set_option(s, SSH_OPTIONS_NODELAY, yes) && set_option(s, SSH_OPTIONS_PASSWORD_AUTH, no) &&
         set_option(s, SSH_OPTIONS_KBDINT_AUTH, no) && set_option(s, SSH_OPTIONS_GSSAPI_AUTH, no) &&
         set_option(s, SSH_OPTIONS_CIPHERS_C_S, cipher_preference()) &&
         set_option(s, SSH_OPTIONS_CIPHERS_S_C, cipher_preference());
}

}  // namespace

std::string Endpoint::display() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(std::string_view text, std::uint16_t default_port) {
  const auto bad = [&](const char* why) {
    return make_error(Exit::kUsage, "invalid server address '" + std::string(text) + "': " + why);
  };
  Endpoint endpoint{{}, default_port};
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    endpoint.host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':' after ']'");
      port_text = rest.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
  } else if (const auto colon = text.find(':');
             colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    endpoint.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (port_text.empty()) return bad("empty port");
  } else {
    endpoint.host = std::string(text);  // a name, IPv4, or a bare IPv6 literal
  }
  if (endpoint.host.empty()) return bad("empty host");
  if (!port_text.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 || value > 65535) {
      return bad("port must be a number from 1 to 65535");
    }
    endpoint.port = static_cast<std::uint16_t>(value);
  }
  return endpoint;
}

Connection::Connection(ssh_session session, Endpoint endpoint)
    : session_(session), endpoint_(std::move(endpoint)) {}

Connection::Connection(Connection&& other) noexcept
    : session_(std::exchange(other.session_, nullptr)), endpoint_(std::move(other.endpoint_)) {}

Connection::~Connection() {
  if (session_ == nullptr) return;
  if (ssh_is_connected(session_)) ssh_disconnect(session_);
  ssh_free(session_);
}

Result<Connection> Connection::open(const Endpoint& endpoint, const std::string& user,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto addresses = resolve(endpoint, timeout);
  if (!addresses) {
    Error error = std::move(addresses).error();
    error.message = "cannot connect to " + endpoint.display() + ": " + error.message;
    return error;
  }
  std::optional<Error> last;
  for (const std::string& address : *addresses) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    auto connection = open_address(address, endpoint, user, left);
    if (connection) return connection;
    last = std::move(connection).error();
  }
  if (!last) {
    return make_error(Exit::kTimeout, "cannot connect to " + endpoint.display() + ": no answer within " +
                                          std::to_string(timeout.count()) + " ms (--timeout)");
  }
  return *last;
}

Result<Connection> Connection::open_address(const std::string& address, const Endpoint& endpoint,
                                            const std::string& user, std::chrono::milliseconds timeout) {
  ssh_session raw = ssh_new();
  if (raw == nullptr) return make_error(Exit::kIoErr, "cannot allocate an SSH session");
  Connection connection(raw, endpoint);
  if (!configure(raw, address, endpoint, user, timeout)) {
    return make_error(Exit::kUsage,
                      "cannot use server " + endpoint.display() + ": " + connection.last_error());
  }
  const auto start = Clock::now();
  if (ssh_connect(raw) != SSH_OK) {
    // A timeout is told by the clock: libssh's wording differs between its steps.
    const bool timed_out = Clock::now() - start >= timeout - std::chrono::milliseconds(timeout.count() / 20);
    return make_error(timed_out ? Exit::kTimeout : Exit::kUnavailable,
                      "cannot connect to " + endpoint.display() + ": " + connection.last_error());
  }
  return connection;
}

std::string Connection::cipher() const {
  const char* name = ssh_get_cipher_out(session_);
  return name != nullptr ? name : "";
}

Result<std::string> Connection::host_key_fingerprint() const {
  ssh_key raw_key = nullptr;
  if (ssh_get_server_publickey(session_, &raw_key) != SSH_OK) {
    return make_error(Exit::kProtocol, "server " + endpoint_.display() + " sent no host key");
  }
  const SshKey key(raw_key);
  unsigned char* raw_hash = nullptr;
  size_t hash_len = 0;
  if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &raw_hash, &hash_len) != 0) {
    return make_error(Exit::kProtocol, "cannot hash the host key of " + endpoint_.display());
  }
  const std::unique_ptr<unsigned char, SshHashFree> hash(raw_hash);
  const SshChars text(ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash.get(), hash_len));
  return std::string(text.get());
}

// libssh signs with an RSA key using SHA-1 ("ssh-rsa") unless the server's EXT_INFO, which
// announces rsa-sha2-*, has been processed; it arrives right after the key exchange and may not
// have been read yet (OpenSSH 8.8+ and OTP 25 refuse SHA-1). The server sends it before
// answering any authentication request, so a "none" request first settles the race.
int Connection::read_server_extensions() { return ssh_userauth_none(session_, nullptr); }

Status Connection::authenticate(ssh_key private_key) {
  const char* kind = ssh_key_type_to_char(ssh_key_type(private_key));  // NULL for a type it has no name for
  const std::string key = std::string("this identity's ") + (kind != nullptr ? kind : "unknown") + " key";
  if (ssh_key_type(private_key) == SSH_KEYTYPE_RSA) {
    const int rc = read_server_extensions();
    if (rc == SSH_AUTH_SUCCESS || rc == SSH_AUTH_ERROR) return auth_result(rc, key);
  }
  return auth_result(ssh_userauth_publickey(session_, nullptr, private_key), key);
}

Status Connection::authenticate_with_agent(int agent_fd) {
  if (agent_fd < 0 || ssh_set_agent_socket(session_, agent_fd) != SSH_OK) {
    return make_error(Exit::kUnavailable, "cannot use ssh-agent: " + last_error());
  }
  const std::string key = "this identity's key (through ssh-agent)";
  const int rc = read_server_extensions();  // the agent's key may be RSA
  if (rc == SSH_AUTH_SUCCESS || rc == SSH_AUTH_ERROR) return auth_result(rc, key);
  return auth_result(ssh_userauth_agent(session_, nullptr), key);
}

// A refusal does not say why: the UUID may be registered with another key, or the server may not
// take this kind of key at all. Both are named, since the client cannot tell them apart.
Status Connection::auth_result(int rc, const std::string& key) const {
  if (rc == SSH_AUTH_SUCCESS) return {};
  if (rc == SSH_AUTH_ERROR) {
    return make_error(Exit::kUnavailable,
                      "authentication with " + endpoint_.display() + " failed: " + last_error());
  }
  return make_error(Exit::kNoPerm, "server " + endpoint_.display() + " refused " + key +
                                       ": the UUID is registered there with a different key (restore the "
                                       "original key, e.g. `game identity import`), or the server does not "
                                       "accept this kind of key");
}

Result<SshChannel> Connection::open_subsystem(const std::string& subsystem) {
  ssh_channel raw = ssh_channel_new(session_);
  if (raw == nullptr) return make_error(Exit::kUnavailable, "cannot create a channel: " + last_error());
  SshChannel channel(raw, session_, endpoint_.display(), subsystem);
  if (ssh_channel_open_session(raw) != SSH_OK) {
    return make_error(Exit::kUnavailable,
                      "server " + endpoint_.display() + " refused a session channel: " + last_error());
  }
  // Non-blocking, libssh 0.10 sends the request and returns SSH_AGAIN; later calls on the same
  // channel then only look for the answer (channels.c: channel_request()).
  GAME_TRY(channel.poll_subsystem_reply(false));
  return channel;
}

int Connection::fd() const { return ssh_get_fd(session_); }

std::string Connection::last_error() const { return ssh_get_error(session_); }

SshChannel::SshChannel(ssh_channel channel, ssh_session session, std::string peer, std::string subsystem)
    : channel_(channel), session_(session), peer_(std::move(peer)), subsystem_(std::move(subsystem)) {}

SshChannel::SshChannel(SshChannel&& other) noexcept
    : channel_(std::exchange(other.channel_, nullptr)),
      session_(other.session_),
      peer_(std::move(other.peer_)),
      subsystem_(std::move(other.subsystem_)),
      reply_(other.reply_),
      connection_(std::move(other.connection_)) {}

SshChannel::~SshChannel() {
  if (channel_ != nullptr) ssh_channel_free(channel_);
}

void SshChannel::own(Connection&& connection) {
  connection_ = std::make_unique<Connection>(std::move(connection));
}

// The first call sends the request; each later one handles what has arrived and notes the answer
// if it is there (on loopback it may already be, in the first call). The session stays blocking
// for everything else. An error is a lost connection.
Status SshChannel::poll_subsystem_reply(bool block) {
  if (!block) ssh_set_blocking(session_, 0);
  const int rc = ssh_channel_request_subsystem(channel_, subsystem_.c_str());
  if (!block) ssh_set_blocking(session_, 1);
  if (rc == SSH_AGAIN) return {};
  if (rc == SSH_OK) {
    reply_ = Reply::kAccepted;
    return {};
  }
  if (ssh_is_connected(session_) == 0) {
    return make_error(Exit::kUnavailable, std::string("connection lost: ") + ssh_get_error(session_));
  }
  reply_ = Reply::kRefused;
  return {};
}

Result<bool> SshChannel::subsystem_accepted() {
  if (reply_ == Reply::kPending) GAME_TRY(poll_subsystem_reply(true));
  if (reply_ == Reply::kPending) {
    return make_error(Exit::kTimeout, "server " + peer_ + " did not answer the request for the subsystem '" +
                                          subsystem_ + "' (--timeout)");
  }
  return reply_ == Reply::kAccepted;
}

// What was written behind a refused request reached no subsystem: the caller reports it as not
// delivered.
Status SshChannel::check_subsystem_reply() {
  if (reply_ == Reply::kPending) GAME_TRY(poll_subsystem_reply(false));
  if (reply_ != Reply::kRefused) return {};
  return make_error(Exit::kUnavailable, "server " + peer_ + " refused the subsystem '" + subsystem_ + "'");
}

std::uint32_t SshChannel::window() const { return ssh_channel_window_size(channel_); }

Status SshChannel::write(std::string_view bytes) {
  const int n = ssh_channel_write(channel_, bytes.data(), static_cast<uint32_t>(bytes.size()));
  if (n == static_cast<int>(bytes.size())) return {};
  return make_error(Exit::kUnavailable, std::string("write failed: ") + ssh_get_error(session_));
}

// Nothing on the channel counts before the server accepted the subsystem: data ahead of the
// answer belongs to no subsystem (a refusal behind it would unsay every result), so it stays in
// libssh's buffer until the answer is in. A channel closed with the answer still owed is not a
// proof of delivery: the server never said a subsystem read what was written.
Result<bool> SshChannel::read_available(std::string& out) {
  GAME_TRY(check_subsystem_reply());
  if (reply_ == Reply::kPending) {
    // The server's EOF or CLOSE (libssh marks the channel closed also after our own close).
    if (ssh_channel_is_eof(channel_) == 0) return true;
    return make_error(Exit::kUnavailable,
                      "server " + peer_ +
                          " closed the channel without answering the request for the subsystem '" +
                          subsystem_ + "'");
  }
  return read_data(out);
}

Result<bool> SshChannel::read_data(std::string& out) {
  // Bounded per call so that a server flooding us cannot grow `out` without limit, and small:
  // a batch's results arrive faster than they are handled, and `out` is most of its peak
  // memory (256 KB per call made it 400 KB).
  constexpr std::size_t kMaxPerCall = 64 * 1024;
  more_available_ = false;
  for (const std::size_t start = out.size();;) {
    if (out.size() - start >= kMaxPerCall) {
      more_available_ = true;
      return true;
    }
    const int available = ssh_channel_poll(channel_, 0);
    if (available == SSH_EOF) return false;
    if (available == SSH_ERROR) {
      return make_error(Exit::kUnavailable, std::string("connection lost: ") + ssh_get_error(session_));
    }
    if (available == 0) return !ssh_channel_is_closed(channel_);
    char buf[16384];
    const uint32_t want = available < static_cast<int>(sizeof buf) ? available : sizeof buf;
    const int n = ssh_channel_read_nonblocking(channel_, buf, want, 0);
    if (n < 0) {
      return make_error(Exit::kUnavailable, std::string("connection lost: ") + ssh_get_error(session_));
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

Status SshChannel::send_eof() {
  if (ssh_channel_send_eof(channel_) == SSH_OK) return {};
  return make_error(Exit::kUnavailable, std::string("cannot send EOF: ") + ssh_get_error(session_));
}

Status SshChannel::close() {
  if (ssh_channel_close(channel_) == SSH_OK) return {};
  return make_error(Exit::kUnavailable, std::string("cannot close the channel: ") + ssh_get_error(session_));
}

Status SshChannel::wait(std::initializer_list<int> fds, Clock::time_point until) {
  if (more_available_) return {};  // what libssh holds already is read first
  pollfd polled[4] = {{ssh_get_fd(session_), POLLIN, 0}};
  nfds_t count = 1;
  for (const int fd : fds) {
    if (fd >= 0 && count < 4) polled[count++] = {fd, POLLIN, 0};
  }
  int timeout_ms = -1;
  if (until != Clock::time_point::max()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    timeout_ms = static_cast<int>(std::max<long>(left.count(), 0));
  }
  if (::poll(polled, count, timeout_ms) < 0 && errno != EINTR) return make_error(Exit::kIoErr, "poll failed");
  return {};
}

bool SshChannel::remote_closed() const { return ssh_channel_is_eof(channel_) != 0; }

}  // namespace game
