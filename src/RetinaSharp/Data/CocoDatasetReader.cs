// COCO instances json -> DetectionDataset, as torchvision's references/detection/coco_utils.py prepares
// targets (bbox XYWH -> XYXY, iscrowd kept, images without annotations kept), reading through CocoJson.
using RetinaSharp.IO;

namespace RetinaSharp.Data;

/// <summary>Reads a COCO instances file into a <see cref="DetectionDataset"/>.</summary>
internal static class CocoDatasetReader
{
    /// <summary>Reads <paramref name="jsonPath"/>; see <see cref="DetectionDataset.Load"/>.</summary>
    public static DetectionDataset Read(string jsonPath)
    {
        var coco = CocoJson.ReadInstances(jsonPath);
        string dir = Path.GetDirectoryName(jsonPath)!;
        var problems = new List<DataProblem>();

        var categories = new List<CocoCategory>();
        var seenCategories = new HashSet<long>();
        foreach (var c in coco.Categories)
        {
            if (seenCategories.Add(c.Id)) categories.Add(c);
            else problems.Add(new DataProblem(DataProblemKind.DuplicateId, jsonPath, $"category id {c.Id}", "id", c.Id.ToString(),
                $"duplicate category id (name '{c.Name}'); the first category with this id is kept"));
        }

        string imagesDir = Path.Combine(dir, "images");
        bool imagesDirExists = Directory.Exists(imagesDir);
        var paths = new string[coco.Images.Count];
        int found = 0;
        for (int i = 0; i < paths.Length; i++)
        {
            string name = coco.Images[i].FileName;
            string a = Path.GetFullPath(Path.Combine(dir, name)), b = Path.GetFullPath(Path.Combine(imagesDir, name));
            if (File.Exists(a)) { paths[i] = a; found++; }
            else if (File.Exists(b)) { paths[i] = b; found++; }
            else paths[i] = imagesDirExists ? b : a;
        }
        if (found == 0 && paths.Length > 0)
        {
            string da = Path.GetDirectoryName(Path.GetFullPath(Path.Combine(dir, coco.Images[0].FileName)))!;
            string db = Path.GetDirectoryName(Path.GetFullPath(Path.Combine(imagesDir, coco.Images[0].FileName)))!;
            if (!Directory.Exists(da) && !Directory.Exists(db))
                throw new DataFormatException(jsonPath, $"image id {coco.Images[0].Id}", "file_name",
                    $"image folder not found: neither '{da}' nor '{db}' exists (file_name '{coco.Images[0].FileName}' is read relative to the json's folder, then to its images/ subfolder)");
        }

        var firstIndexOfId = new Dictionary<long, int>();
        for (int i = 0; i < coco.Images.Count; i++) firstIndexOfId.TryAdd(coco.Images[i].Id, i);
        var boxes = new List<DetectionBox>[coco.Images.Count];
        var boxSources = new List<DataSource>[coco.Images.Count];
        for (int i = 0; i < boxes.Length; i++) { boxes[i] = new(); boxSources[i] = new(); }
        foreach (var a in coco.Annotations)
        {
            string record = $"annotation id {a.Id}";
            if (!firstIndexOfId.TryGetValue(a.ImageId, out int i))
            {
                problems.Add(new DataProblem(DataProblemKind.UnknownImage, jsonPath, record, "image_id", a.ImageId.ToString(),
                    "no image record has this id; the annotation is left out"));
                continue;
            }
            boxes[i].Add(new DetectionBox(a.Id, (float)a.X, (float)a.Y, (float)(a.X + a.Width), (float)(a.Y + a.Height), a.CategoryId, a.IsCrowd));
            boxSources[i].Add(new DataSource(jsonPath, record));
        }

        var images = new DetectionImage[coco.Images.Count];
        var imageSources = new DataSource[coco.Images.Count];
        for (int i = 0; i < images.Length; i++)
        {
            var im = coco.Images[i];
            images[i] = new DetectionImage(im.Id, paths[i], im.Width, im.Height, boxes[i]);
            imageSources[i] = new DataSource(jsonPath, $"image id {im.Id}");
        }
        return new DetectionDataset(jsonPath, DatasetFormat.Coco, new CategoryMap(categories), images, imageSources,
            boxSources.Select(s => s.ToArray()).ToArray(), problems);
    }
}
