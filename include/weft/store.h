/* weft/store.h: being written (see the open issue); nothing public yet. */
#ifndef WEFT_STORE_H
#define WEFT_STORE_H

#include "common.h"

#endif
