// A deliberate data race, for tsan_selftest: two threads increment one
// plain int with nothing ordering them. A TSan build must report it; if it
// does not, the tsan build checks nothing.
#include <cstdio>
#include <thread>

namespace {

int counter = 0;  // deliberately unguarded

void Bump() {
  for (int i = 0; i < 1000; ++i) ++counter;
}

}  // namespace

int main() {
  std::thread first(Bump);
  std::thread second(Bump);
  first.join();
  second.join();
  std::printf("counter=%d\n", counter);
  return 0;
}
