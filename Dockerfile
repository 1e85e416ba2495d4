# clipkit in a container: builds the Debian package on Debian 12, installs it into a slim Debian 12
# runtime image (apt pulls the package's Depends), and serves an index on port 8080.
#
#   docker build -t clipkit .
#   docker run --rm -v ~/.cache/huggingface:/root/.cache/huggingface -v ~/Pictures:/photos:ro -v clipkit-index:/index \
#     clipkit index build --model openai/clip-vit-base-patch32 --folder /photos --index /index
#   docker run --rm -p 8080:8080 -v ~/.cache/huggingface:/root/.cache/huggingface -v ~/Pictures:/photos:ro \
#     -v clipkit-index:/index clipkit            # serve /index: open http://127.0.0.1:8080/
#
# (The model comes from the Hugging Face cache mounted at /root/.cache/huggingface; nothing is
# downloaded at run time. scripts/check_docker.sh runs every RUN step below in a fresh Debian 12 root.)
FROM debian:bookworm AS build
WORKDIR /src
COPY deps/debian-packages.txt deps/
# The build's packages: the list minus what only the tests, benchmarks and browser test use.
RUN apt-get update \
 && grep -v '^#' deps/debian-packages.txt | cut -d' ' -f1 \
    | grep -vxE 'libgtest-dev|libbenchmark-dev|python3-numpy|chromium|nodejs|npm|wrk|lintian|mmdebstrap' \
    | xargs env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dpkg-dev file \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLIPKIT_TESTS=OFF -DCLIPKIT_BENCH=OFF \
 && cmake --build build -j"$(nproc)" \
 && cd build && cpack -G DEB && cp clipkit_*.deb /clipkit.deb

FROM debian:bookworm-slim
COPY --from=build /clipkit.deb /tmp/clipkit.deb
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /tmp/clipkit.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/clipkit.deb \
 && clipkit --version
VOLUME ["/index"]
EXPOSE 8080
ENTRYPOINT ["clipkit"]
CMD ["serve", "--index", "/index", "--host", "0.0.0.0", "--port", "8080"]
