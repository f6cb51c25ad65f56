#include "launcher/commands.h"

int main(int argc, char** argv) {
  return convoy::run_cli(argc, argv);
}
