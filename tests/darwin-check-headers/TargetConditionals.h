/* For scripts/check-macos only: the one Apple SDK header ring's C includes, reduced to the
 * macros ring reads (ring-core/base.h). The check compiles ring's C (cargo clippy runs build
 * scripts) but links nothing, so no SDK library is needed; Apple's SDK cannot be fetched here. */
#ifndef STAGEPASS_TARGET_CONDITIONALS_H
#define STAGEPASS_TARGET_CONDITIONALS_H
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_TV 0
#define TARGET_OS_SIMULATOR 0
#endif
