// Where the coordinator is and how to prove who we are to it: what a worker, a monitor or a
// checkpoint source needs to connect (dist/coordinator_client.h does the connecting).
#pragma once

#include <string>
#include <string_view>

namespace convoy {

struct CoordinatorAddress {
  std::string target;      // host:port
  std::string token;       // empty: no authorization header
  std::string tls_ca_pem;  // empty: plaintext
};

// A bearer token from a file, surrounding white space removed. Throws Error (invalid input)
// naming the file when it cannot be read or holds no token.
std::string read_token_file(const std::string& path);

// Whether a presented token equals the expected one, in constant time: how long a wrong token
// takes does not tell how much of it was right. Used by the gRPC and the HTTP side alike.
bool same_secret(std::string_view a, std::string_view b);

}  // namespace convoy
