// Host lists a user or a discovery script gives `convoy launch`: an Open MPI hostfile (first
// byte even) or a discovery script's `host:slots` lines (odd), through parse_hostfile and
// parse_discovered_hosts. Accepted hosts must be usable: a name, and 1 to kMaxSlots slots.
#include <cstdlib>

#include "fuzz_support.h"
#include "launcher/launch_plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  convoy::fuzz::refused_or_accepted([&] {
    const std::vector<convoy::HostSlots> hosts =
        data[0] % 2 == 0 ? convoy::parse_hostfile(text, "hosts")
                         : convoy::parse_discovered_hosts(text, "discovery");
    for (const convoy::HostSlots& h : hosts) {
      if (h.host.empty() || h.slots < 1 || h.slots > convoy::kMaxSlots) std::abort();
    }
    convoy::total_slots(hosts);
  });
  return 0;
}
