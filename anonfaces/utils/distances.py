"""dlib descriptor distances that several stages agree on, each defined once here."""

#: dlib's own same-person threshold (its LFW verification rule): the attackers, the video evaluation.
SAME_PERSON = 0.6
#: Stricter: an output face this close to an original photo of its person is still that person's -- the
#: unprotected face of the release's safety net, of the privacy check's own-photo term and of the evaluation.
UNPROTECTED = 0.5
