// Staleness at the client, as the paper's artifact defines it (docs/results.md, "Staleness"): a
// read is stale when it returned a value whose overwriting write had already ended at its client
// before the read ended, and its staleness is the read's end less that write's end; otherwise it
// is 0. Taken from the client's records only (each request's start, end and the digest of its
// response), for a workload of reads and the workload of writes the scenario judges it against
// (`stale_against`). Both ends are at the clients, on one clock (the driver's, or a client host's
// moved to it). The store-side measure (the `read_staleness` view: the functions' reads against
// the commits at the origin) is another, named apart.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "testbed/results.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

// The staleness of every OK request of every workload of `s` with `stale_against`, against the
// OK requests of that workload, from `requests`. The writes are taken in the order they started
// (then ended);
// a read that returned a write's value (the digest of the write's response, which for the paper's
// `replication` function is the value written) is matched to the last write of that value that
// started before the read ended, and the write after it overwrote it; a read that returned the
// empty value is matched to the time before the first write.
std::vector<ClientStalenessRecord> ClientStaleness(const Scenario& s,
                                                   const std::vector<RequestRecord>& requests);

}  // namespace enoki::testbed
