# POST /v1/embeddings through the official OpenAI Node client (label "server"; node and npm come
# from scripts/setup.sh, the client from package-lock.json via npm ci).
add_test(NAME openai_client.embeddings
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/openai_client/run_openai_test.sh $<TARGET_FILE:clipkit> ${PROJECT_SOURCE_DIR}/tests/data)
set_tests_properties(openai_client.embeddings PROPERTIES LABELS "server;openai" TIMEOUT 300)
