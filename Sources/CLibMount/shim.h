#pragma once
#include <libmount.h>
