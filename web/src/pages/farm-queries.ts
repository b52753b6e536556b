import { useQuery } from "@tanstack/react-query";
import { api, ok, type LibraryFile } from "../api/client.ts";

export const printersQuery = { queryKey: ["printers"], queryFn: () => ok(api.GET("/api/v1/printers")) };

export function usePrinters() {
  return useQuery(printersQuery);
}

/** The library by file id (thumbnails and metadata of the jobs' files). */
export function useFiles() {
  return useQuery({
    queryKey: ["files"],
    queryFn: () => ok(api.GET("/api/v1/files", { params: { query: { limit: 500, offset: 0 } } })),
    select: (answer) => ({
      ...answer,
      byId: new Map<string, LibraryFile>(answer.files.map((f) => [f.id, f])),
    }),
  });
}
