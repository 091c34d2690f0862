// The demo's synthetic search log: videos with a text part (a title and tags) and a visual
// part (frame features), and queries of which most can be answered from the text alone
// while the rest need the visuals. It reproduces the data bias MBVR is about: a model
// that matches query words to title words already gets most queries right, so nothing
// pushes it to learn what a video shows.
//
// The world, drawn once from the seed:
// - `topics` topics, each with `wordsPerTopic` pseudo-words, used with Zipf frequencies
//   in titles; each topic has 3 typical visual concepts (a cooking channel shows kitchens).
// - `concepts` visual concepts (cat, guitar, beach, ...), each a prototype direction in
//   frame-feature space, plus one word that names it. Frame features stand in for the
//   output of a frozen image encoder.
// - Most videos have a title of their own: 4-6 topic words, 0-2 generic words, and with
//   probability 0.3 a tag naming the main thing shown.
// - Series videos come in groups of `seriesSize` with one shared title (re-uploads,
//   compilations, "daily vlog"), each showing a different main concept, never named in
//   the title. A query for one of them names the series and what is shown
//   ("kovaro melin guitar"): only the visuals tell the siblings apart.
// - Frames: each of `frames` frames shows the video's main concept (and a second one for
//   40% of the videos) over the topic's look, a per-video appearance and per-frame noise;
//   20% of the frames are junk (intros, black frames) with no concept at all.
// - Queries: 2-3 words of the title; each topic word is swapped for another word of the
//   topic with probability 0.1 (misspellings, synonyms); a generic word is added with
//   probability 0.3; a text-answerable query also names the main thing shown with
//   probability 0.2 (users describe what they saw).
// - Visual relevance per query: how much of the query is about what the video shows
//   (1: it names a shown concept the title does not; 0.5: one the title names too; 0:
//   none), plus Gaussian noise (sd 0.15), clipped to [0, 1] -- the kind of estimate a
//   frozen image-text model gives. The MBVR run turns it into the dynamic margin.
import { categorical, gaussian, randInt, type Random, sampleDistinct, shuffle, stream } from './random';

export interface DatasetOptions {
  /** everything below is drawn from it [1] */
  seed: number;
  /** gallery size [3000] */
  videos: number;
  /** [30] */
  topics: number;
  /** [50] */
  wordsPerTopic: number;
  /** distinct visual concepts, at most 48 (each has a name) [40] */
  concepts: number;
  /** frame features per video [8] */
  frames: number;
  /** [64] */
  frameDim: number;
  /** videos sharing one title [4] */
  seriesSize: number;
  /** share of queries that need the visuals (their targets are series videos) [0.2] */
  visionShare: number;
  /** training queries per video [4] */
  trainQueriesPerVideo: number;
  /** held-out queries [1000] */
  testQueries: number;
  /** scales every noise level of the frame features [1] */
  noise: number;
}

export const defaultDatasetOptions: DatasetOptions = {
  seed: 1,
  videos: 3000,
  topics: 30,
  wordsPerTopic: 50,
  concepts: 40,
  frames: 8,
  frameDim: 64,
  seriesSize: 4,
  visionShare: 0.2,
  trainQueriesPerVideo: 4,
  testQueries: 1000,
  noise: 1,
};

export interface Video {
  topic: number;
  /** -1 for a title of its own */
  series: number;
  /** token ids of the title and tags */
  title: number[];
  /** visual concepts the frames show, the main one first */
  shown: number[];
}

export interface Query {
  tokens: number[];
  /** the video that answers it */
  video: number;
  /** its target shares the title with other videos: only the visuals single it out */
  needsVision: boolean;
  /** noisy estimate in [0, 1] of how much the query is about what the video shows */
  visualRelevance: number;
}

export interface Dataset {
  options: DatasetOptions;
  /** token names: topic words, then concept words, then generic words */
  words: string[];
  videos: Video[];
  /** videos x frames x frameDim */
  frames: Float32Array;
  train: Query[];
  test: Query[];
}

const CONCEPT_NAMES = [
  'cat', 'dog', 'horse', 'bird', 'fish', 'car', 'bike', 'train', 'boat', 'plane',
  'beach', 'forest', 'snow', 'city', 'kitchen', 'stage', 'stadium', 'desert', 'river', 'garden',
  'guitar', 'piano', 'drums', 'cake', 'pizza', 'noodles', 'baby', 'crowd', 'dance', 'fire',
  'rain', 'night', 'sunset', 'mountain', 'pool', 'robot', 'puppet', 'painting', 'flowers', 'fireworks',
  'lake', 'bridge', 'tractor', 'violin', 'skate', 'tent', 'candle', 'lego',
];
const GENERIC_WORDS = [
  'video', 'best', 'new', 'official', 'full', 'hd', 'funny', 'top', 'part', 'live',
  'how', 'to', 'my', 'the', 'vlog', 'episode', 'review', 'short', 'compilation', 'today',
];
const SYLLABLES = ['ka', 'lo', 'mi', 'ra', 'ven', 'to', 'shi', 'nu', 'pe', 'dar', 'qu', 'bel', 'zo', 'fi', 'gan', 'ru', 'te', 'mo', 'lix', 'sa'];

/** A pronounceable made-up word: topic words read like words, not like ids. */
function pseudoWord(random: Random): string {
  const n = 2 + randInt(random, 2);
  let w = '';
  for (let i = 0; i < n; i++) w += SYLLABLES[randInt(random, SYLLABLES.length)];
  return w;
}

function addScaled(out: Float32Array, offset: number, v: Float32Array, scale: number): void {
  for (let d = 0; d < v.length; d++) out[offset + d] += scale * v[d];
}

function randomDirection(random: Random, dim: number): Float32Array {
  const v = Float32Array.from({ length: dim }, () => gaussian(random));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

export function generateDataset(partial: Partial<DatasetOptions> = {}): Dataset {
  const o: DatasetOptions = { ...defaultDatasetOptions, ...partial };
  if (o.concepts > CONCEPT_NAMES.length) throw new RangeError(`concepts: at most ${CONCEPT_NAMES.length}`);
  if (o.seriesSize < 2 || o.seriesSize > o.concepts) throw new RangeError('seriesSize: between 2 and concepts');

  // ---- vocabulary: topic words, concept words, generic words
  const wordRandom = stream(o.seed, 'words');
  const words: string[] = [];
  const used = new Set<string>([...CONCEPT_NAMES, ...GENERIC_WORDS]);
  for (let i = 0; i < o.topics * o.wordsPerTopic; i++) {
    let w = pseudoWord(wordRandom);
    while (used.has(w)) w = pseudoWord(wordRandom);
    used.add(w);
    words.push(w);
  }
  const conceptWord = (c: number) => o.topics * o.wordsPerTopic + c;
  words.push(...CONCEPT_NAMES.slice(0, o.concepts));
  const genericBase = words.length;
  words.push(...GENERIC_WORDS);
  const topicWord = (z: number, r: number) => z * o.wordsPerTopic + r;
  const zipf = categorical(Array.from({ length: o.wordsPerTopic }, (_, r) => 1 / (r + 1)));
  const generic = (random: Random) => genericBase + randInt(random, GENERIC_WORDS.length);

  // ---- the visual world: concept prototypes, topic looks, typical concepts per topic
  const visualRandom = stream(o.seed, 'visual-world');
  const prototypes = Array.from({ length: o.concepts }, () => randomDirection(visualRandom, o.frameDim));
  const looks = Array.from({ length: o.topics }, () => randomDirection(visualRandom, o.frameDim));
  const typical = Array.from({ length: o.topics }, () => sampleDistinct(visualRandom, o.concepts, 3));
  const mainConcept = (random: Random, z: number, pTypical: number) =>
    random() < pTypical ? typical[z][randInt(random, 3)] : randInt(random, o.concepts);

  // ---- videos: series first (then shuffled into place), then videos with their own title
  const videoRandom = stream(o.seed, 'videos');
  const seriesCount = Math.round((o.visionShare * o.videos) / o.seriesSize);
  const videos: Video[] = [];
  const distinctTopicWords = (random: Random, z: number, n: number) => {
    const chosen = new Set<number>();
    while (chosen.size < n) chosen.add(topicWord(z, zipf(random)));
    return [...chosen];
  };
  for (let s = 0; s < seriesCount; s++) {
    const z = randInt(videoRandom, o.topics);
    const title = distinctTopicWords(videoRandom, z, 3 + randInt(videoRandom, 2));
    if (videoRandom() < 0.5) title.push(generic(videoRandom));
    const mains = new Set<number>();
    while (mains.size < o.seriesSize) mains.add(mainConcept(videoRandom, z, 0.5));
    for (const c of mains) videos.push({ topic: z, series: s, title, shown: [c] });
  }
  while (videos.length < o.videos) {
    const z = randInt(videoRandom, o.topics);
    const c = mainConcept(videoRandom, z, 0.6);
    const title = distinctTopicWords(videoRandom, z, 4 + randInt(videoRandom, 3));
    for (let g = randInt(videoRandom, 3); g > 0; g--) title.push(generic(videoRandom));
    if (videoRandom() < 0.3) title.push(conceptWord(c));
    videos.push({ topic: z, series: -1, title, shown: [c] });
  }
  videos.length = o.videos;
  shuffle(videoRandom, videos);
  for (const v of videos) {
    if (videoRandom() < 0.4) {
      let second = randInt(videoRandom, o.concepts);
      while (second === v.shown[0]) second = randInt(videoRandom, o.concepts);
      v.shown.push(second);
    }
  }

  // ---- frames (videos x frames x frameDim)
  const frameRandom = stream(o.seed, 'frames');
  const frames = new Float32Array(o.videos * o.frames * o.frameDim);
  const noise = (scale: number) => Float32Array.from({ length: o.frameDim }, () => (scale * gaussian(frameRandom)) / Math.sqrt(o.frameDim));
  videos.forEach((v, i) => {
    const appearance = noise(0.6 * o.noise);
    for (let f = 0; f < o.frames; f++) {
      const at = (i * o.frames + f) * o.frameDim;
      addScaled(frames, at, looks[v.topic], 0.5);
      addScaled(frames, at, appearance, 1);
      addScaled(frames, at, noise(1.0 * o.noise), 1);
      if (frameRandom() < 0.2) continue; // a junk frame: no concept in it
      addScaled(frames, at, prototypes[v.shown[0]], 1);
      if (v.shown.length > 1) addScaled(frames, at, prototypes[v.shown[1]], 0.6);
    }
  });

  // ---- queries
  const isConceptWord = (w: number) => w >= conceptWord(0) && w < genericBase;
  const makeQuery = (random: Random, videoIndex: number): Query => {
    const v = videos[videoIndex];
    const needsVision = v.series >= 0;
    const content = v.title.filter((w) => w < genericBase);
    const topicPart = content.filter((w) => !isConceptWord(w));
    let tokens: number[];
    if (needsVision) {
      tokens = shuffle(random, [...topicPart]).slice(0, 2);
      tokens.push(conceptWord(v.shown[0]));
    } else {
      tokens = shuffle(random, [...content]).slice(0, 2 + randInt(random, 2));
      if (random() < 0.2 && !tokens.includes(conceptWord(v.shown[0]))) tokens.push(conceptWord(v.shown[0]));
    }
    tokens = tokens.map((w) => (!isConceptWord(w) && random() < 0.1 ? topicWord(v.topic, randInt(random, o.wordsPerTopic)) : w));
    if (random() < 0.3) tokens.push(generic(random));
    const names = v.shown.map(conceptWord).filter((w) => tokens.includes(w));
    const truth = names.length === 0 ? 0 : names.some((w) => !v.title.includes(w)) ? 1 : 0.5;
    const visualRelevance = Math.min(1, Math.max(0, truth + 0.15 * gaussian(random)));
    return { tokens: shuffle(random, tokens), video: videoIndex, needsVision, visualRelevance };
  };
  const trainRandom = stream(o.seed, 'train-queries');
  const train: Query[] = [];
  for (let i = 0; i < o.videos; i++) for (let r = 0; r < o.trainQueriesPerVideo; r++) train.push(makeQuery(trainRandom, i));
  const testRandom = stream(o.seed, 'test-queries');
  const seriesVideos = videos.map((_, i) => i).filter((i) => videos[i].series >= 0);
  const ownVideos = videos.map((_, i) => i).filter((i) => videos[i].series < 0);
  const visionTests = seriesVideos.length ? Math.round(o.visionShare * o.testQueries) : 0;
  const test: Query[] = [];
  for (let n = 0; n < o.testQueries; n++) {
    const pool = n < visionTests ? seriesVideos : ownVideos;
    test.push(makeQuery(testRandom, pool[randInt(testRandom, pool.length)]));
  }
  return { options: o, words, videos, frames, train, test };
}

/** One line per part of the data, for the demo's header. */
export function describeDataset(data: Dataset): string[] {
  const o = data.options;
  const share = (qs: Query[]) => ((100 * qs.filter((q) => q.needsVision).length) / qs.length).toFixed(0);
  const example = data.test.find((q) => q.needsVision);
  const lines = [
    `${o.videos} videos (${data.videos.filter((v) => v.series >= 0).length} in series of ${o.seriesSize} sharing a title), ` +
      `${o.frames} frames x ${o.frameDim} features each, vocabulary ${data.words.length}`,
    `${data.train.length} training queries, ${data.test.length} test queries; ${share(data.train)}% / ${share(data.test)}% need the visuals`,
  ];
  if (example) {
    const v = data.videos[example.video];
    lines.push(
      `e.g. query "${example.tokens.map((w) => data.words[w]).join(' ')}" -> video titled ` +
        `"${v.title.map((w) => data.words[w]).join(' ')}" (like ${o.seriesSize - 1} others) that shows ${v.shown.map((c) => data.words[o.topics * o.wordsPerTopic + c]).join(' + ')}`,
    );
  }
  return lines;
}
