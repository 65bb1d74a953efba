/* Host build of esp-dl's pre/postprocess (host/espdl_cpp): no IDF target is defined, so esp-dl's
 * dl_define_private.hpp turns every SIMD/ISA path off (CONFIG_*_BOOST 0). The rounding switch is
 * patched separately (HIL_ROUND_HALF_EVEN, set per build). Only the RGB888 pixel conversion is built. */
#pragma once
#define CONFIG_PIX_CVT_RGB888_TO_RGB888_SUPPORT 1
