// The BeFaaS IoT traffic application's functions (befaas.cc has the call graph).
#pragma once

#include <map>
#include <string>

#include "node/function_host.h"

namespace enoki::functions {

// Adds trafficsensorfilter, movementplan, lightphasecalculation, weathersensorfilter,
// roadcondition, objectrecognition, trafficstatistics and emergencydetection to `functions`.
void AddBefaasFunctions(node::NativeFunctions& functions);

}  // namespace enoki::functions
