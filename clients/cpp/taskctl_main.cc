// taskctl: command-line client of taskd. See taskctl.h.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "clients/cpp/taskctl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return taskd::RunTaskctl(args, std::getenv("TASKD_SERVER"), std::cout,
                           std::cerr, std::getenv("TASKD_TOKEN"));
}
