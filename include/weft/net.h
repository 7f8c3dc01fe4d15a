/* weft/net.h: being written (see the open issue); nothing public yet. */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include "common.h"

#endif
