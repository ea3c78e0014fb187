# Argosy's image: one image for every command. By default it is Argo's artifact driver
# plugin (Argo runs the ENTRYPOINT with the socket path as its last argument); the GC
# controller, the sidecar's init/wait/emissary and the other commands override it
# (`command: [argosy, gc, ...]`).
#
# Built by scripts/image, which prepares the build context this file expects:
#   rootfs.tar   Debian bookworm (mmdebstrap, essential packages plus python3): no base
#                image, so no registry is needed
#   wheels/      Argosy's wheel and its dependencies pinned in image-requirements.txt
#                (copied in as wheels/requirements.txt): pip installs from them only
# and builds it with `buildah bud --isolation chroot`.
FROM scratch
ARG VERSION=unknown
LABEL org.opencontainers.image.title="argosy" \
      org.opencontainers.image.description="Artifact storage and data streaming for Argo Workflows pods" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.licenses="Apache-2.0"
ADD rootfs.tar /
# The venv has no pip of its own: Debian's pip wheel runs the install, then is not needed.
# The user 8737 (Argo's executor and GC pods run as it) owns nothing; only /tmp is
# writable (1777), the other world-writable folders of Debian's tree are closed.
RUN --mount=type=bind,source=wheels,target=/wheels \
    pip=$(echo /usr/share/python-wheels/pip-*.whl)/pip \
 && python3 -m venv --without-pip /opt/argosy \
 && /opt/argosy/bin/python "$pip" install --quiet \
        --no-index --no-cache-dir --find-links /wheels \
        --requirement /wheels/requirements.txt "argosy[plugin,oss,k8s]" \
 && ln -s /opt/argosy/bin/argosy /usr/local/bin/argosy \
 && echo "argosy:x:8737:8737:Argosy:/tmp:/usr/sbin/nologin" >> /etc/passwd \
 && echo "argosy:x:8737:" >> /etc/group \
 && chmod 0755 /var/tmp /run/lock \
 && chmod 1777 /tmp \
 && argosy --version
ENV PATH=/opt/argosy/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    PYTHONUNBUFFERED=1
USER 8737:8737
ENTRYPOINT ["argosy", "plugin"]
