#include "ssfpn/ssfpn.h"

G_DEFINE_QUARK (ssfpn-error-quark, ssfpn_error)
