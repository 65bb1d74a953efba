/* What the host build of esp-dl's pre/postprocess takes from the chip instead of from the host (hil_chip.c).
 *
 * - hil_expf / hil_logf: the chip's float expf/logf, i.e. newlib's fdlibm routines as GCC 12 builds them for
 *   rv32imafc (-O2/-Os: the multiply-adds host/chip/libm.py lists are fused). glibc's expf/logf differ from
 *   them in the last bit for ~7 % of the yolo11 arguments. The build patches esp-dl's dl_math.hpp (its copy
 *   in the build directory) to call these.
 * - hil_fcvt_w_s_rne: what `fcvt.w.s rd, rs, rne` computes on the ESP32-P4 (round to nearest, ties to even;
 *   saturating; NaN -> INT32_MAX). esp-dl's tool::round_half_even(float) runs that instruction when
 *   CONFIG_PIE_V2_BOOST; the P4 build patches dl_tool.cpp (its copy) to call this instead of the asm.
 */
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
float hil_expf(float x);
float hil_logf(float x);
int32_t hil_fcvt_w_s_rne(float x);
#ifdef __cplusplus
}
#endif
