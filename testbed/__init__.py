"""A local testbed for the demo, the tests and the benchmarks: real registries, test images built in code, pushes.

- `registry.LocalRegistry`: a CNCF distribution registry (2.8, or v3 with `flavour="v3"`) on a free loopback port,
  started and stopped by its owner.
- `images.ImageBuilder`: tiny deterministic images of any platform set, indexes, attestations, charts, bad manifests.
- `push.push`: skopeo pushes (raw HTTP where skopeo would rewrite the bytes), digests unchanged.
- `stack.GuardedRegistry`: a registry whose notifications reach a running local host and pipeline.
- `tools.require_tool`: the Go tools pinned in scripts/tools.lock, built by scripts/setup outside the repository; a
  test without them skips, or fails under PLATFORM_GUARD_REQUIRE_TOOLS=1.
- `signing.Cosign`, `signing.Notation`: the real signing CLIs in private directories, signing and verifying by digest.
- `signatures.Signer`: signatures shaped as cosign and Notation push them, without keys (fast, for the product tests).
- `registry.ReferrersApiRegistry`: olareg, a registry that serves the OCI referrers API.
"""
