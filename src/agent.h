// Signing with the player's key through ssh-agent, offering that one key only.
//
// libssh's agent authentication offers every key the agent holds, and a server that registers
// unknown keys would silently make an account of the first one. So libssh is given a private
// agent instead: a socket served by a thread here that lists only the player's key and forwards
// only signature requests for it to the real agent ($SSH_AUTH_SOCK).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "error.h"

namespace game {

class AgentKey {
 public:
  // The agent at `socket_path` if it holds the key whose public blob is `public_blob`;
  // nullptr when it does not (or cannot be reached: then the key file is used instead).
  static std::unique_ptr<AgentKey> find(const std::string& socket_path, const std::string& public_blob);
  ~AgentKey();
  AgentKey(const AgentKey&) = delete;
  AgentKey& operator=(const AgentKey&) = delete;

  // A dup() of the filtered agent's client end, for ssh_set_agent_socket (which takes ownership
  // of it); -1 if it cannot be duplicated.
  int dup_client_fd() const;

 private:
  AgentKey(int agent_fd, std::string public_blob);
  void serve();

  int agent_fd_;   // connection to the real agent
  int served_fd_;  // our end of the socket pair
  int client_fd_;  // libssh's end
  std::string public_blob_;
  std::thread thread_;
};

}  // namespace game
