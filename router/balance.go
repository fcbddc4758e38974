package router

import "slices"

// plan returns the order in which a call tries the route's targets: each
// balanced rank sorted by load (see Target.Weight). A route without one
// returns its targets as they are, which the caller must not modify.
func (rt *route) plan(rnd func() float64) []*target {
	if !rt.balanced {
		return rt.targets
	}
	p := slices.Clone(rt.targets)
	for _, rk := range rt.ranks {
		order(p[rk.lo:rk.hi], rnd)
	}
	return p
}

// order sorts ts (weighted targets) by outstanding calls per unit of weight,
// lowest first; equals are ordered at random in proportion to their weight.
func order(ts []*target, rnd func() float64) {
	for i := 0; i < len(ts)-1; i++ {
		best := i
		bestOut, bestW := ts[i].ts.out.Load(), int64(ts[i].Weight)
		sumW := bestW // the weight of the equals of best seen so far
		for j := i + 1; j < len(ts); j++ {
			out, w := ts[j].ts.out.Load(), int64(ts[j].Weight)
			// out/w against bestOut/bestW, without division.
			switch l, r := out*bestW, bestOut*w; {
			case l < r:
				best, bestOut, bestW, sumW = j, out, w, w
			case l == r:
				// Weighted reservoir sampling: the j-th equal replaces the
				// choice with probability w / (the equals' weight so far).
				sumW += w
				if rnd()*float64(sumW) < float64(w) {
					best, bestOut, bestW = j, out, w
				}
			}
		}
		ts[i], ts[best] = ts[best], ts[i]
	}
}
