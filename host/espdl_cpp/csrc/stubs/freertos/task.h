/* Host stand-in for the ESP-IDF header of this name: nothing the host build uses. */
#pragma once
#include <stdint.h>
