#pragma once

// The whole public API of libsluice.
#include "sluice/client.h"
#include "sluice/error.h"
#include "sluice/types.h"
