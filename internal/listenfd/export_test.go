package listenfd

import "os"

// FileOf is s's own file (the parent's descriptor), for tests that look at
// its flags or pass it as systemd would.
func FileOf(s *Socket) *os.File { return s.f }

const ShimVar = shimVar
const MarkerVar = markerVar
