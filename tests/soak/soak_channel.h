// Channels for the soak test's clients and workers, which must find a
// server restarted on the same port quickly (gRPC's default reconnect
// backoff grows to two minutes). Stateless; safe from any thread.
#ifndef TASKD_TESTS_SOAK_SOAK_CHANNEL_H_
#define TASKD_TESTS_SOAK_SOAK_CHANNEL_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>

namespace taskd::soak {

// An insecure channel to `target` with its own subchannel and a reconnect
// backoff of at most 500 ms. `stalling`: for a consumer that stops reading —
// no BDP probing and a small receive window, so that what it does not read
// stays unsent on the server's side instead of in a growing client buffer.
std::shared_ptr<grpc::Channel> NewSoakChannel(const std::string& target,
                                              bool stalling = false);

}  // namespace taskd::soak

#endif  // TASKD_TESTS_SOAK_SOAK_CHANNEL_H_
