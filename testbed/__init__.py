"""A local testbed for the demo, the tests and the benchmarks: real registries, test images built in code, pushes.

- `registry.LocalRegistry`: a CNCF distribution registry on a free loopback port, started and stopped by its owner.
- `images.ImageBuilder`: tiny deterministic images of any platform set, indexes, attestations, charts, bad manifests.
- `push.push`: skopeo pushes (raw HTTP where skopeo would rewrite the bytes), digests unchanged.
- `stack.GuardedRegistry`: a registry whose notifications reach a running local host and pipeline.
"""
