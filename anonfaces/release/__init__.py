"""What may leave: the shareable/private folder split, neutral names, the no-face policy and `verify`.

* `layout`: ``OUT/`` (only photos) and the private folder (everything that links back);
* `naming`: keyed-hash output names, the naming key;
* `nofaces`: the second detector pass, the ``--no-face`` policy, the output safety net;
* `verify`: re-check a finished output folder before sharing it.
"""

from anonfaces.release.layout import check_folders, default_private_dir
from anonfaces.release.naming import (
    NAMING_MODES,
    hashed_stem,
    load_or_create_key,
    output_names,
    read_key,
)
from anonfaces.release.nofaces import (
    MATCH_THRESHOLD,
    NO_FACE_POLICIES,
    apply_no_face_policy,
    blur_all,
    find_unprotected,
    recover_faces,
    scan_photos,
)
from anonfaces.release.verify import (
    Finding,
    VerifyReport,
    image_metadata,
    verify_release,
)

__all__ = [
    "MATCH_THRESHOLD",
    "NAMING_MODES",
    "NO_FACE_POLICIES",
    "Finding",
    "VerifyReport",
    "apply_no_face_policy",
    "blur_all",
    "check_folders",
    "default_private_dir",
    "find_unprotected",
    "hashed_stem",
    "image_metadata",
    "load_or_create_key",
    "output_names",
    "read_key",
    "recover_faces",
    "scan_photos",
    "verify_release",
]
