#include "agent/cli.h"

int main(int argc, char** argv) { return tributary::Main(argc, argv); }
