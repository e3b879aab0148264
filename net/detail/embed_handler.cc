// POST /embed: texts to their BGE-M3 outputs with the database's model.
#include "net/detail/handlers.h"

namespace m3vdb::net::detail {

Response Embed(Database& db, const ServiceOptions& options, const Request& request) {
  if (!db.GetModelInfo())
    return ErrorResponse(400, "no_model", "no embedding model is configured; start the server with --model DIR");
  auto body = ParseJsonObject(request.body);
  if (!body.ok()) return ErrorResponse(body.status());
  auto embed = DecodeEmbedRequest(*body);
  if (!embed.ok()) return ErrorResponse(embed.status());
  if (embed->texts.size() > options.max_embed_texts)
    return ErrorResponse(Status::ResourceExhausted("texts has " + std::to_string(embed->texts.size()) +
                                                   " entries, limit is " + std::to_string(options.max_embed_texts)));
  for (size_t i = 0; i < embed->texts.size(); ++i)
    if (embed->texts[i].size() > options.max_embed_text_bytes)
      return ErrorResponse(Status::ResourceExhausted("texts[" + std::to_string(i) + "] is " +
                                                     std::to_string(embed->texts[i].size()) + " bytes, limit is " +
                                                     std::to_string(options.max_embed_text_bytes)));
  auto embeddings = db.Embed(embed->texts);
  if (!embeddings.ok()) return ErrorResponse(embeddings.status());
  return JsonResponse(200, EncodeEmbeddings(*embeddings, *embed));
}

}  // namespace m3vdb::net::detail
