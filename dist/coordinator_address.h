// Where the coordinator is and how to prove who we are to it: what a worker, a monitor or a
// checkpoint source needs to connect (dist/coordinator_client.h does the connecting).
#pragma once

#include <string>

namespace convoy {

struct CoordinatorAddress {
  std::string target;      // host:port
  std::string token;       // empty: no authorization header
  std::string tls_ca_pem;  // empty: plaintext
};

// A bearer token from a file, surrounding white space removed. Throws Error (invalid input)
// naming the file when it cannot be read or holds no token.
std::string read_token_file(const std::string& path);

}  // namespace convoy
