// The BeFaaS IoT traffic application's functions (befaas_functions.cc has the call graph).
#pragma once

#include <map>
#include <string>

#include "node/function_host.h"

namespace enoki::node {

// Adds trafficsensorfilter, movementplan, lightphasecalculation, weathersensorfilter,
// roadcondition, objectrecognition, trafficstatistics and emergencydetection to `functions`.
void AddBefaasFunctions(std::map<std::string, NativeFunction>& functions);

}  // namespace enoki::node
