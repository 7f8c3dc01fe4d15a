/* weft/actor.h: being written (see the open issue); nothing public yet. */
#ifndef WEFT_ACTOR_H
#define WEFT_ACTOR_H

#include "common.h"

#endif
